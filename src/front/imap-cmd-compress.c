/* imap-cmd-compress.c - COMPRESS (RFC 4978): the command checks the
   mechanism and answers; the stream does the compression
   (stream_start_compress(), whose comment gives the stance on
   compression oracles). The command is in imap_cmds_compress, which the
   session dispatcher offers only after login, so credentials are never
   compressed. */

#include "lib.h"
#include "front-private.h"
#include "imap-session.h"

#include <strings.h>

static void imap_cmd_compress(struct imap_cmd *cmd)
{
	struct front_conn *conn = cmd->session->conn;
	const char *mech;

	if (cmd->arg_count != 1 || !imap_arg_get_atom(&cmd->args[0], &mech)) {
		imap_cmd_bad(cmd, "COMPRESS needs one mechanism");
		return;
	}
	/* RFC 4978 3: DEFLATE is the only mechanism defined. */
	if (strcasecmp(mech, "DEFLATE") != 0) {
		imap_cmd_bad(cmd, "Unknown compression mechanism");
		return;
	}
	/* RFC 4978 3: a second COMPRESS gets NO [COMPRESSIONACTIVE]. */
	if (front_conn_is_compressed(conn)) {
		imap_cmd_no(cmd, "COMPRESSIONACTIVE", "Already compressing");
		return;
	}
	/* RFC 4978 3: the server compresses from the end of this tagged
	   OK; the client from the end of its command. */
	imap_cmd_ok(cmd, NULL, "DEFLATE active");
	front_conn_compress_after_reply(conn);
}

const struct imap_cmd_def imap_cmds_compress[] = {
	{ "COMPRESS", imap_cmd_compress, 0 },
	{ NULL, NULL, 0 },
};
