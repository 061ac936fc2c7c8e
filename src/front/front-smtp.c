/* front-smtp.c - placeholder, being written. */
extern int marmot_placeholder;
