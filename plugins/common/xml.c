/*
 * xml.c - a small, strict XML reader for the JUnit reports of test tools:
 * elements, attributes in either quote, character data, CDATA sections,
 * the five predefined entities and numeric character references (decoded
 * to UTF-8); the XML declaration, processing instructions, comments and a
 * DOCTYPE are skipped.  Line ends are normalized to LF, and whitespace
 * characters written literally in attribute values become spaces (as XML
 * says; "&#10;" stays a newline).  No namespaces, no DTD entities.  A
 * syntax error gives "line L, column C: what".
 */
#define _GNU_SOURCE
#include "htplugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 256 };

typedef struct parser {
	const char *start, *p, *end;
	char *error;
	int nomem;
} parser;

/* Sets the error at position at (the first error wins); returns -1. */
static int syntax(parser *ps, const char *at, const char *what)
{
	if (ps->error || ps->nomem)
		return -1;
	int line = 1, col = 1;
	for (const char *q = ps->start; q < at && q < ps->end; q++) {
		if (*q == '\n')
			line++, col = 1;
		else if (((unsigned char)*q & 0xC0) != 0x80)
			col++;
	}
	if (asprintf(&ps->error, "line %d, column %d: %s", line, col, what) < 0) {
		ps->error = NULL;
		ps->nomem = 1;
	}
	return -1;
}

static int nomem(parser *ps)
{
	ps->nomem = 1;
	return -1;
}

static int starts(const parser *ps, const char *lit)
{
	size_t n = strlen(lit);
	return (size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, lit, n);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_space(parser *ps)
{
	while (ps->p < ps->end && is_space(*ps->p))
		ps->p++;
}

/* Skip past the terminator (e.g. "-->"); error when it never comes. */
static int skip_past(parser *ps, const char *term, const char *what)
{
	const char *at = ps->p;
	const char *q = memmem(ps->p, (size_t)(ps->end - ps->p), term, strlen(term));
	if (!q)
		return syntax(ps, at, what);
	ps->p = q + strlen(term);
	return 0;
}

static int skip_doctype(parser *ps)
{
	const char *at = ps->p;
	int depth = 0;
	char quote = 0;
	for (ps->p += 9; ps->p < ps->end; ps->p++) {
		char c = *ps->p;
		if (quote) {
			if (c == quote)
				quote = 0;
		} else if (c == '"' || c == '\'') {
			quote = c;
		} else if (c == '[') {
			depth++;
		} else if (c == ']') {
			depth--;
		} else if (c == '>' && depth <= 0) {
			ps->p++;
			return 0;
		}
	}
	return syntax(ps, at, "unterminated DOCTYPE");
}

static void put_utf8(htp_buf *b, unsigned long cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80)
		u[0] = (char)cp, n = 1;
	else if (cp < 0x800)
		u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
	else if (cp < 0x10000)
		u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
		u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
	else
		u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
	htp_buf_add(b, u, n);
}

/* The reference at q ("&...;"), appended decoded; returns its length or 0. */
static size_t reference(parser *ps, const char *q, htp_buf *out)
{
	static const struct {
		const char *name, *text;
	} named[] = {{"lt;", "<"}, {"gt;", ">"}, {"amp;", "&"}, {"quot;", "\""}, {"apos;", "'"}};
	size_t left = (size_t)(ps->end - q) - 1;
	for (size_t i = 0; i < 5; i++) {
		size_t n = strlen(named[i].name);
		if (left >= n && !memcmp(q + 1, named[i].name, n)) {
			htp_buf_str(out, named[i].text);
			return n + 1;
		}
	}
	if (left < 3 || q[1] != '#') {
		syntax(ps, q, "unknown entity (only &lt; &gt; &amp; &quot; &apos; and &#...; are known)");
		return 0;
	}
	int hex = q[2] == 'x';
	const char *d = q + 2 + hex;
	unsigned long cp = 0;
	size_t digits = 0;
	for (; d < ps->end && *d != ';'; d++, digits++) {
		int v = (*d >= '0' && *d <= '9')            ? *d - '0'
		        : (hex && *d >= 'a' && *d <= 'f') ? *d - 'a' + 10
		        : (hex && *d >= 'A' && *d <= 'F') ? *d - 'A' + 10
		                                          : -1;
		if (v < 0 || digits > 8) {
			syntax(ps, q, "malformed character reference");
			return 0;
		}
		cp = cp * (hex ? 16 : 10) + (unsigned long)v;
	}
	if (d >= ps->end || digits == 0 || cp == 0 || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF)) {
		syntax(ps, q, "malformed character reference");
		return 0;
	}
	put_utf8(out, cp);
	return (size_t)(d - q) + 1;
}

/* Decode [from, to) into out.  attr: literal whitespace becomes spaces. */
static int decode(parser *ps, const char *from, const char *to, int attr, htp_buf *out)
{
	for (const char *q = from; q < to;) {
		size_t plain = 0;
		while (q + plain < to && q[plain] != '&' && q[plain] != '\r' &&
		       !(attr && (q[plain] == '\t' || q[plain] == '\n')))
			plain++;
		htp_buf_add(out, q, plain);
		q += plain;
		if (q >= to)
			break;
		if (*q == '&') {
			ps->end = to; /* references must end inside [from, to) */
			size_t n = reference(ps, q, out);
			if (!n)
				return -1;
			q += n;
			continue;
		}
		if (*q == '\r' && q + 1 < to && q[1] == '\n')
			q++; /* CRLF is one line end */
		htp_buf_add(out, attr ? " " : "\n", 1);
		q++;
	}
	return out->nomem ? nomem(ps) : 0;
}

static int is_name_char(char c)
{
	return !is_space(c) && c != '/' && c != '>' && c != '=' && c != '<' && c != '"' &&
	       c != '\'' && c != '\0';
}

static char *read_name(parser *ps)
{
	const char *s = ps->p;
	while (ps->p < ps->end && is_name_char(*ps->p))
		ps->p++;
	if (ps->p == s) {
		syntax(ps, s, "expected a name");
		return NULL;
	}
	char *n = strndup(s, (size_t)(ps->p - s));
	if (!n)
		nomem(ps);
	return n;
}

static int add_kid(parser *ps, htp_xml *parent, htp_xml *kid)
{
	if (parent->n_kids == parent->cap_kids) {
		size_t cap = parent->cap_kids ? parent->cap_kids * 2 : 4;
		htp_xml **k = realloc(parent->kids, cap * sizeof *k);
		if (!k)
			return nomem(ps);
		parent->kids = k;
		parent->cap_kids = cap;
	}
	parent->kids[parent->n_kids++] = kid;
	return 0;
}

/* ps->p is just after '<'.  Reads the tag into a new element; *empty is set
 * for "<x/>". */
static htp_xml *start_tag(parser *ps, int *empty)
{
	htp_xml *e = calloc(1, sizeof *e);
	size_t n_attrs = 0;
	if (!e) {
		nomem(ps);
		return NULL;
	}
	if (!(e->name = read_name(ps)))
		goto fail;
	for (;;) {
		const char *before = ps->p;
		skip_space(ps);
		if (ps->p >= ps->end) {
			syntax(ps, ps->p, "unterminated start tag");
			goto fail;
		}
		if (*ps->p == '>' || starts(ps, "/>")) {
			*empty = *ps->p == '/';
			ps->p += *empty ? 2 : 1;
			return e;
		}
		if (ps->p == before) {
			syntax(ps, ps->p, "expected whitespace before an attribute");
			goto fail;
		}
		const char *name_at = ps->p;
		char *name = read_name(ps);
		if (!name)
			goto fail;
		char **a = realloc(e->attrs, (n_attrs * 2 + 3) * sizeof *a);
		if (!a) {
			free(name);
			nomem(ps);
			goto fail;
		}
		e->attrs = a;
		a[n_attrs * 2] = name;
		a[n_attrs * 2 + 1] = NULL;
		a[n_attrs * 2 + 2] = NULL;
		n_attrs++;
		for (size_t i = 0; i + 1 < n_attrs; i++)
			if (!strcmp(a[i * 2], name)) {
				syntax(ps, name_at, "attribute given twice");
				goto fail;
			}
		skip_space(ps);
		if (ps->p >= ps->end || *ps->p != '=') {
			syntax(ps, ps->p, "expected '=' after the attribute name");
			goto fail;
		}
		ps->p++;
		skip_space(ps);
		if (ps->p >= ps->end || (*ps->p != '"' && *ps->p != '\'')) {
			syntax(ps, ps->p, "expected a quoted attribute value");
			goto fail;
		}
		char quote = *ps->p++;
		const char *v = ps->p, *close = memchr(v, quote, (size_t)(ps->end - v));
		const char *lt = memchr(v, '<', (size_t)(ps->end - v));
		if (!close || (lt && lt < close)) {
			syntax(ps, v - 1, close ? "'<' in an attribute value" : "unterminated attribute value");
			goto fail;
		}
		htp_buf val = {0};
		const char *end = ps->end;
		int rc = decode(ps, v, close, 1, &val);
		ps->end = end;
		a[n_attrs * 2 - 1] = rc ? NULL : htp_buf_take(&val);
		if (rc || !a[n_attrs * 2 - 1]) {
			free(val.data);
			if (!rc)
				nomem(ps);
			goto fail;
		}
		ps->p = close + 1;
	}
fail:
	htp_xml_free(e);
	return NULL;
}

/* The content of the elements on the stack, up to the root's end tag. */
static int content(parser *ps, htp_xml **stack, size_t depth)
{
	htp_buf text = {0};
	while (depth > 0) {
		htp_xml *top = stack[depth - 1];
		if (ps->p >= ps->end) {
			free(text.data);
			return syntax(ps, ps->p, "unexpected end of the document (unclosed element)");
		}
		const char *lt = memchr(ps->p, '<', (size_t)(ps->end - ps->p));
		const char *stop = lt ? lt : ps->end;
		if (stop > ps->p) {
			const char *end = ps->end;
			int rc = decode(ps, ps->p, stop, 0, &text);
			ps->end = end;
			if (rc) {
				free(text.data);
				return -1;
			}
			ps->p = stop;
			continue;
		}
		if (starts(ps, "<!--")) {
			if (skip_past(ps, "-->", "unterminated comment"))
				break;
		} else if (starts(ps, "<![CDATA[")) {
			const char *s = ps->p += 9;
			if (skip_past(ps, "]]>", "unterminated CDATA section"))
				break;
			htp_buf_add(&text, s, (size_t)(ps->p - 3 - s));
		} else if (starts(ps, "<?")) {
			if (skip_past(ps, "?>", "unterminated processing instruction"))
				break;
		} else if (starts(ps, "</")) {
			const char *at = ps->p;
			ps->p += 2;
			char *name = read_name(ps);
			if (!name)
				break;
			int same = !strcmp(name, top->name);
			free(name);
			if (!same) {
				syntax(ps, at, "end tag does not match the open element");
				break;
			}
			skip_space(ps);
			if (ps->p >= ps->end || *ps->p != '>') {
				syntax(ps, ps->p, "expected '>'");
				break;
			}
			ps->p++;
			if (text.len) {
				top->text_len = text.len;
				if (!(top->text = htp_buf_take(&text))) {
					nomem(ps);
					break;
				}
			}
			free(text.data);
			memset(&text, 0, sizeof text);
			depth--;
			/* text of the parent continues after this child: keep it */
			if (depth > 0 && stack[depth - 1]->text) {
				htp_buf_add(&text, stack[depth - 1]->text, stack[depth - 1]->text_len);
				free(stack[depth - 1]->text);
				stack[depth - 1]->text = NULL;
			}
		} else {
			const char *at = ps->p++;
			int empty = 0;
			htp_xml *kid = start_tag(ps, &empty);
			if (!kid || add_kid(ps, top, kid)) {
				htp_xml_free(kid);
				break;
			}
			if (!empty) {
				if (depth == MAX_DEPTH) {
					syntax(ps, at, "elements nested too deeply");
					break;
				}
				/* park the parent's text until its child ends */
				if (text.len) {
					top->text_len = text.len;
					if (!(top->text = htp_buf_take(&text))) {
						nomem(ps);
						break;
					}
				}
				free(text.data);
				memset(&text, 0, sizeof text);
				stack[depth++] = kid;
			}
		}
		if (text.nomem) {
			nomem(ps);
			break;
		}
	}
	free(text.data);
	return (ps->error || ps->nomem) ? -1 : 0;
}

/* Whitespace, comments and processing instructions; DOCTYPE too when allowed. */
static int misc(parser *ps, int doctype)
{
	for (;;) {
		skip_space(ps);
		if (starts(ps, "<!--")) {
			if (skip_past(ps, "-->", "unterminated comment"))
				return -1;
		} else if (starts(ps, "<?")) {
			if (skip_past(ps, "?>", "unterminated processing instruction"))
				return -1;
		} else if (doctype && starts(ps, "<!DOCTYPE")) {
			if (skip_doctype(ps))
				return -1;
		} else {
			return 0;
		}
	}
}

htp_xml *htp_xml_parse(const char *s, size_t len, char **error)
{
	parser ps = {s, s, s + len, NULL, 0};
	htp_xml *root = NULL, *stack[MAX_DEPTH];
	*error = NULL;
	if (memchr(s, '\0', len)) {
		syntax(&ps, (const char *)memchr(s, '\0', len), "NUL byte in the document");
		goto out;
	}
	if (starts(&ps, "\xEF\xBB\xBF"))
		ps.p += 3;
	if (misc(&ps, 1))
		goto out;
	if (ps.p >= ps.end || *ps.p != '<') {
		syntax(&ps, ps.p, ps.p >= ps.end ? "no root element" : "text before the root element");
		goto out;
	}
	ps.p++;
	int empty = 0;
	if (!(root = start_tag(&ps, &empty)))
		goto out;
	stack[0] = root;
	if (!empty && content(&ps, stack, 1))
		goto out;
	if (misc(&ps, 0))
		goto out;
	if (ps.p < ps.end)
		syntax(&ps, ps.p, "content after the root element");
out:
	if (ps.error || ps.nomem) {
		htp_xml_free(root);
		*error = ps.error;
		return NULL;
	}
	return root;
}

void htp_xml_free(htp_xml *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_kids; i++)
		htp_xml_free(e->kids[i]);
	free(e->kids);
	for (char **a = e->attrs; a && a[0]; a += 2) {
		free(a[0]);
		free(a[1]);
	}
	free(e->attrs);
	free(e->name);
	free(e->text);
	free(e);
}

const char *htp_xml_attr(const htp_xml *e, const char *name)
{
	for (char **a = e->attrs; a && a[0]; a += 2)
		if (!strcmp(a[0], name))
			return a[1];
	return NULL;
}

htp_xml *htp_xml_child(const htp_xml *e, const char *name)
{
	for (size_t i = 0; i < e->n_kids; i++)
		if (!strcmp(e->kids[i]->name, name))
			return e->kids[i];
	return NULL;
}

static int collect(htp_xml *e, const char *name, htp_xml ***out, size_t *n, size_t *cap,
                   int depth)
{
	if (!strcmp(e->name, name)) {
		if (*n + 1 >= *cap) {
			size_t c = *cap ? *cap * 2 : 8;
			htp_xml **a = realloc(*out, c * sizeof *a);
			if (!a)
				return -1;
			*out = a;
			*cap = c;
		}
		(*out)[(*n)++] = e;
		(*out)[*n] = NULL;
	}
	for (size_t i = 0; i < e->n_kids && depth < MAX_DEPTH + 1; i++)
		if (collect(e->kids[i], name, out, n, cap, depth + 1))
			return -1;
	return 0;
}

htp_xml **htp_xml_find_all(htp_xml *e, const char *name, size_t *n)
{
	htp_xml **out = calloc(1, sizeof *out);
	size_t cap = 1;
	*n = 0;
	if (out && collect(e, name, &out, n, &cap, 0)) {
		free(out);
		return NULL;
	}
	return out;
}
