/* message-decode.c - placeholder, being written. */
extern int marmot_placeholder;
