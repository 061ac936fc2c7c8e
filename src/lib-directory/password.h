#ifndef MARMOT_PASSWORD_H
#define MARMOT_PASSWORD_H
/* Password hashing: argon2id through libsodium's crypto_pwhash_str, with
   the "interactive" cost (t=2, m=64 MiB), encoded as a PHC string
   ("$argon2id$v=19$m=65536,t=2,p=1$..."). Verification is constant-time
   inside libsodium. Each hash costs about 64 MiB and tens of milliseconds:
   callers in the network path must run it on a capped worker pool. */

#include "lib.h"

#define PASSWORD_HASH_MAX 128
/* Passwords longer than this are refused before hashing (DoS bound). */
#define PASSWORD_MAX_LEN 1024

/* Returns 0 and the encoded hash in hash_r, or -1 (out of memory: the
   kernel refused 64 MiB). */
int password_hash(const char *password, size_t len,
		  char hash_r[PASSWORD_HASH_MAX]);
/* Returns true if password matches hash. */
bool password_verify(const char *hash, const char *password, size_t len);
/* Returns true if hash was made with other parameters than the current
   ones (or is not a hash libsodium understands): the caller may rehash the
   password after a successful verification. */
bool password_needs_rehash(const char *hash);
/* A valid hash of a random password, computed once per process, for
   verifying unknown users with the same cost as known ones. */
const char *password_dummy_hash(void);
/* Reads a password from fd: the first line, without the trailing CR/LF.
   Refuses empty passwords and ones longer than PASSWORD_MAX_LEN. Returns
   a malloc'ed string the caller wipes and frees, or NULL with *error_r. */
char *password_read_fd(int fd, const char **error_r);

#endif
