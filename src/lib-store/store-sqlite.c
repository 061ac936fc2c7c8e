/* store-sqlite.c - placeholder, being written. */
extern int marmot_placeholder;
