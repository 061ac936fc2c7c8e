/* front-pop3.c - placeholder, being written. */
extern int marmot_placeholder;
