/*
 * jsonpos.h - where a member or element of a JSON document sits in its
 * source text (1-based line and column), for error messages about values
 * that parsed fine but mean something wrong.  jansson reports positions only
 * for syntax errors; this is a small tokenizer that walks the text itself.
 *
 * Columns count characters, not bytes (a UTF-8 sequence is one column), the
 * way jansson counts them in its own error positions.
 */
#ifndef HT_JSONPOS_H
#define HT_JSONPOS_H

#include <stddef.h>

/* One step of a path into a document: an object member (key != NULL,
 * compared with the decoded member name) or an array element (key == NULL,
 * zero-based index). */
typedef struct ht_jsonpos_step {
	const char *key;
	size_t index;
} ht_jsonpos_step;

typedef struct ht_jsonpos {
	size_t depth;     /* steps matched: the path's length when found, else
	                     the depth of the closest existing ancestor */
	int key_line;     /* the member's key (its opening quote); 0 for the */
	int key_column;   /* root and for array elements */
	int value_line;   /* first character of the value */
	int value_column;
} ht_jsonpos;

/* Locate path[0..depth) in text[0..len).  Returns 0 when the whole path
 * exists, 1 when only an ancestor does (out describes that ancestor: the
 * root when depth is 0), -1 when the text is not well-formed JSON up to the
 * place looked for (out then holds the deepest position reached). */
int ht_jsonpos_find(const char *text, size_t len, const ht_jsonpos_step *path,
                    size_t depth, ht_jsonpos *out);

/* The same for a path made of object keys only. */
int ht_jsonpos_find_keys(const char *text, size_t len, const char *const *keys,
                         size_t depth, ht_jsonpos *out);

#endif /* HT_JSONPOS_H */
