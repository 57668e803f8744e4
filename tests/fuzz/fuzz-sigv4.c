/*
 * fuzz-sigv4.c - Signature Version 4 canonicalisation (the aws provider's
 * sigv4.c): an input is a request in pieces separated by "\n----\n": the
 * method, the path, the query, the headers (one "name:value" a line) and
 * the body.  It is signed in the header and the presigned form for S3 and
 * for Lambda (the two path rules), and its path and query are encoded and
 * decoded.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const char *const services[] = {"s3", "lambda"};
	const uint8_t *piece[5];
	size_t plen[5], pos = 0, i;
	char *method, *path, *query, *hdrs, *line, *save = NULL;
	aws_headers h = {0};
	htp_buf b = {0};
	char *err = NULL;
	int form, s;

	for (i = 0; i < 5; i++)
		fz_piece(data, len, &pos, &piece[i], &plen[i]);
	method = fz_strndup(piece[0], plen[0]);
	path = fz_strndup(piece[1], plen[1]);
	query = fz_strndup(piece[2], plen[2]);
	hdrs = fz_strndup(piece[3], plen[3]);
	aws_headers_add(&h, "Host", "lambda.us-east-1.amazonaws.com");
	for (line = strtok_r(hdrs, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		aws_headers_add(&h, line, colon + 1);
	}
	for (s = 0; s < 2; s++)
		for (form = AWS_SIGV4_HEADER; form <= AWS_SIGV4_QUERY; form++) {
			aws_sigv4_params p;
			aws_sigv4_request req = {method, path, plen[2] ? query : NULL, &h, piece[4],
			                         plen[4]};
			aws_sigv4_result r;
			memset(&p, 0, sizeof p);
			aws_sigv4_defaults(&p, services[s]);
			p.access_key_id = "AKIDEXAMPLE";
			p.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
			p.session_token = s ? "token" : NULL;
			p.region = "us-east-1";
			p.time = 1440938160;
			p.expires = 300;
			if (aws_sigv4_sign(&p, &req, form, &r, &err) == 0)
				aws_sigv4_result_free(&r);
		}
	free(err);
	aws_uri_encode(&b, path, plen[1], 1);
	aws_uri_decode(&b, query, plen[2]);
	htp_buf_free(&b);
	aws_headers_free(&h);
	free(method);
	free(path);
	free(query);
	free(hdrs);
	return 0;
}
