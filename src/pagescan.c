/*-------------------------------------------------------------------------
 *
 * pagescan.c
 *		A streaming JSON scanner for API pages (see pagescan.h).
 *
 * One pass over the bytes, a byte-driven state machine that stops and
 * resumes anywhere (inside a string, an escape, a UTF-8 character, a
 * number or a literal), with an explicit stack of open containers bounded
 * by max_depth.  A record that is whole in its chunk (nearly all of them)
 * is read by recursive descent instead, into the same tape (see "whole
 * records" below); the state machine takes what that cannot finish.  Where
 * a value sits is tracked as it is read: the records array and
 * page_info.total_pages at the top, and inside a record the spec's key
 * paths, found through one hash table built with the spec (a key is hashed
 * once, where it ends).
 *
 * Strictness is json-c's (JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8),
 * which this replaces for pages: RFC 8259 grammar, an unpaired UTF-16
 * surrogate in an escape becomes U+FFFD, raw control characters are kept;
 * UTF-8 is checked fully (no overlong forms, no surrogates, nothing above
 * U+10FFFF).
 *
 *-------------------------------------------------------------------------
 */
#include "pagescan.h"

#include <string.h>

/* blocks grow from small (an array column's few elements) to these */
#define BLOCK_FIELDS_MIN	32
#define BLOCK_FIELDS_MAX	4096
#define TEXT_BLOCK_MIN		512
#define TEXT_BLOCK_MAX		65536
#define STACK_MIN			16
#define NO_NODE			(-1)

/* for the few functions of the per-member path the compiler leaves out of line */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* ---------------------------------------------------------------- the spec */

typedef struct SpecNode
{
	int			slot;			/* -1: no value wanted here */
	bool		has_children;
} SpecNode;

/* a key as hash_key reads it: its first and last 8 bytes, its hash */
typedef struct KeyHash
{
	uint64_t	a;
	uint64_t	b;
	uint32_t	h;
} KeyHash;

typedef struct SpecEdge
{
	int			parent;			/* -1: empty bucket */
	int			child;
	uint32_t	keylen;
	KeyHash		kh;
	const char *key;
} SpecEdge;

struct PsPageSpec
{
	PsAllocFn	alloc;
	void	   *cxt;
	int			nnodes;
	int			maxnodes;
	SpecNode   *nodes;			/* 0 is the record itself */
	SpecEdge   *edges;
	uint32_t	mask;			/* edges has mask + 1 buckets */
	int			nslots;
};

/*
 * A key's hash, in a few multiplications whatever its length: its first and
 * last 8 bytes (4 of a key of 4 to 7 bytes, all of a shorter one), its
 * length and its parent node.  Those bytes are kept: with the length they
 * are the whole key up to 16 bytes, so edge_find compares a key that long
 * without memcmp, and a longer one by its middle only.
 */
static inline void
hash_key(uint32_t parent, const char *k, size_t n, KeyHash *kh)
{
	uint64_t	a = 0,
				b = 0,
				h;

	if (n >= 8)
	{
		memcpy(&a, k, 8);
		memcpy(&b, k + n - 8, 8);
	}
	else if (n >= 4)
	{
		uint32_t	x,
					y;

		memcpy(&x, k, 4);
		memcpy(&y, k + n - 4, 4);
		a = ((uint64_t) x << 32) | y;
	}
	else
		for (size_t i = 0; i < n; i++)
			a = (a << 8) | (unsigned char) k[i];
	h = (a ^ (b * UINT64_C(0x9E3779B97F4A7C15))) + (((uint64_t) parent << 32) | n);
	h *= UINT64_C(0xFF51AFD7ED558CCD);
	kh->a = a;
	kh->b = b;
	kh->h = (uint32_t) (h >> 32);
}

/* the edge from parent by key k: its child, or -(empty bucket) - 1 */
static ALWAYS_INLINE int
edge_find(const PsPageSpec *spec, int parent, const char *k, size_t n)
{
	KeyHash		kh;

	hash_key((uint32_t) parent, k, n, &kh);
	for (uint32_t i = kh.h & spec->mask;; i = (i + 1) & spec->mask)
	{
		const SpecEdge *e = &spec->edges[i];

		if (e->parent < 0)
			return -(int) i - 1;
		if (e->kh.h == kh.h && e->parent == parent && e->keylen == n &&
			e->kh.a == kh.a && e->kh.b == kh.b &&
			(n <= 16 || memcmp(e->key + 8, k + 8, n - 16) == 0))
			return e->child;
	}
}

PsPageSpec *
ps_spec_new(PsAllocFn alloc, void *cxt, int max_path_keys)
{
	PsPageSpec *spec = alloc(cxt, sizeof(PsPageSpec));
	uint32_t	nb = 8;

	if (spec == NULL)
		return NULL;
	while (nb < (uint32_t) max_path_keys * 2 + 2)
		nb <<= 1;
	spec->alloc = alloc;
	spec->cxt = cxt;
	spec->maxnodes = max_path_keys + 1;
	spec->nodes = alloc(cxt, sizeof(SpecNode) * spec->maxnodes);
	spec->edges = alloc(cxt, sizeof(SpecEdge) * nb);
	if (spec->nodes == NULL || spec->edges == NULL)
		return NULL;
	spec->mask = nb - 1;
	for (uint32_t i = 0; i < nb; i++)
		spec->edges[i].parent = -1;
	spec->nnodes = 1;
	spec->nodes[0].slot = -1;
	spec->nodes[0].has_children = false;
	spec->nslots = 0;
	return spec;
}

/*
 * Want the value at path (npath keys; 0 = the record itself); returns its
 * slot (the same for the same path), or -1 when the spec is full.
 */
int
ps_spec_add(PsPageSpec *spec, const char *const *path, int npath)
{
	int			node = 0;

	for (int i = 0; i < npath; i++)
	{
		size_t		n = strlen(path[i]);
		int			found = edge_find(spec, node, path[i], n);

		if (found < 0)
		{
			SpecEdge   *e = &spec->edges[-found - 1];

			if (spec->nnodes >= spec->maxnodes)
				return -1;
			e->parent = node;
			e->child = spec->nnodes;
			hash_key((uint32_t) node, path[i], n, &e->kh);
			e->keylen = (uint32_t) n;
			e->key = path[i];
			spec->nodes[node].has_children = true;
			spec->nodes[spec->nnodes].slot = -1;
			spec->nodes[spec->nnodes].has_children = false;
			found = spec->nnodes++;
		}
		node = found;
	}
	if (spec->nodes[node].slot < 0)
	{
		if (spec->nslots >= PS_MAX_SLOTS)
			return -1;
		spec->nodes[node].slot = spec->nslots++;
	}
	return spec->nodes[node].slot;
}

int
ps_spec_nslots(const PsPageSpec *spec)
{
	return spec->nslots;
}

/* ---------------------------------------------------------------- the tape */

typedef struct TapeBlock
{
	struct TapeBlock *next;
	uint32_t	n;
	uint32_t	cap;
	PsField		f[];
} TapeBlock;

typedef struct TextBlock
{
	struct TextBlock *next;
	size_t		used;
	size_t		cap;
	char		data[];
} TextBlock;

/* ---------------------------------------------------------------- the scanner */

/* where a value sits */
typedef enum Role
{
	R_NONE = 0,					/* nothing wanted in or under it */
	R_TOP,						/* the body, in list mode */
	R_RECORDS,					/* the records array */
	R_RECORD,					/* a record */
	R_FIELD,					/* under a record, at spec node `node` */
	R_PAGE_INFO,
	R_TOTAL_PAGES,
	R_ELEMENTS,					/* the array of elements mode */
	R_ELEMENT
} Role;

typedef enum State
{
	S_VALUE,					/* a value must come */
	S_ARR_FIRST,				/* after '[': a value or ']' */
	S_ARR_NEXT,					/* after an element: ',' or ']' */
	S_OBJ_FIRST,				/* after '{': a key or '}' */
	S_OBJ_KEY,					/* after ',': a key */
	S_COLON,
	S_OBJ_NEXT,					/* after a member: ',' or '}' */
	S_STRING,
	S_NUMBER,
	S_LITERAL,
	S_DONE,						/* after the body's value: white space */
	S_ERROR
} State;

/* string sub-states */
enum
{
	STR_PLAIN = 0,
	STR_ESC,					/* after '\' */
	STR_HEX,					/* in \uXXXX */
	STR_LOW_BS,					/* after a high surrogate: '\' may follow */
	STR_LOW_U					/* after its '\': 'u' may follow */
};

/* number sub-states */
enum
{
	N_MINUS,					/* after '-' */
	N_ZERO,						/* a leading 0 */
	N_INT,
	N_DOT,
	N_FRAC,
	N_E,
	N_ESIGN,
	N_EXP
};

typedef struct Frame
{
	uint8_t		is_object;
	uint8_t		role;
	bool		is_record;		/* a record: its end ends the record */
	int			node;			/* R_FIELD/R_RECORD: spec node */
	uint32_t	cap_start;		/* captured: where it starts in cap */
	int			cap_slot;		/* -1: not captured */
	uint8_t		cap_flags;		/* PS_FIELD_NUL: a string inside holds NUL */
} Frame;

struct PsPageScan
{
	const PsPageSpec *spec;
	PsScanMode	mode;
	const char *records_key;
	size_t		records_keylen;
	int			max_depth;
	PsAllocFn	alloc;
	void	   *cxt;

	State		state;
	PsScanError err;
	PsScanShape shape;
	int			depth;			/* open containers */
	int			stack_size;
	Frame	   *stack;			/* grows up to max_depth */
	uint32_t	next_fields;	/* the size of the next tape block */
	size_t		next_text;		/* the size of the next text block */

	/* the value about to start: where it sits */
	uint8_t		next_role;
	int			next_node;

	/* the string, number or literal being read */
	char	   *sbuf;
	size_t		slen;
	size_t		scap;
	bool		in_key;
	bool		str_keep;		/* its text is wanted (a field, a key that
								 * places one); else sbuf means nothing */
	uint8_t		str_state;
	uint8_t		str_flags;
	uint8_t		hexn;
	uint32_t	hexval;
	uint32_t	hi_surrogate;
	uint8_t		u8_need;		/* continuation bytes still due */
	uint8_t		u8_lo;			/* bounds of the next one */
	uint8_t		u8_hi;
	uint8_t		num_state;
	bool		num_int;
	const char *lit;
	uint8_t		litpos;
	uint8_t		littype;

	/* compact text of the containers being captured (nested share it) */
	char	   *cap;
	size_t		caplen;
	size_t		capcap;
	int			ncaptures;

	/* the tape */
	TapeBlock  *first;
	TapeBlock  *cur;
	TextBlock  *text;
	TextBlock  *text_first;
	PsField    *rec_start;		/* the current record's first entry, or NULL */
	PsField    *last_mark;		/* the last entry, when it is an object mark */
	uint64_t	nrecords;
	int			records_seen;
	bool		top_object;		/* the body is an object */
	int			top_members;	/* members of that object seen whole */
	int			total_pages;
	bool		in_record;
};

static const char *const error_desc[] = {
	[PS_SCAN_OK] = "success",
	[PS_SCAN_INCOMPLETE] = "unexpected end of data",
	[PS_SCAN_ERR_DEPTH] = "nesting too deep",
	[PS_SCAN_ERR_UNEXPECTED] = "unexpected character",
	[PS_SCAN_ERR_NULL] = "null expected",
	[PS_SCAN_ERR_BOOL] = "boolean expected",
	[PS_SCAN_ERR_NUMBER] = "number expected",
	[PS_SCAN_ERR_ARRAY_SEP] = "array value separator ',' expected",
	[PS_SCAN_ERR_KEY] = "quoted object property name expected",
	[PS_SCAN_ERR_COLON] = "object property name separator ':' expected",
	[PS_SCAN_ERR_OBJECT_SEP] = "object value separator ',' expected",
	[PS_SCAN_ERR_STRING] = "invalid string sequence",
	[PS_SCAN_ERR_UTF8] = "invalid utf-8 string",
	[PS_SCAN_ERR_OOM] = "out of memory"
};

const char *
ps_scan_error_desc(PsScanError e)
{
	return error_desc[e];
}

PsPageScan *
ps_scan_new(const PsPageSpec *spec, PsScanMode mode, const char *records_key,
			int max_depth, PsAllocFn alloc, void *cxt)
{
	PsPageScan *s = alloc(cxt, sizeof(PsPageScan));

	if (s == NULL)
		return NULL;
	memset(s, 0, sizeof(PsPageScan));
	s->spec = spec;
	s->mode = mode;
	s->records_key = records_key;
	s->records_keylen = records_key ? strlen(records_key) : 0;
	s->max_depth = max_depth < 2 ? 2 : max_depth;
	s->alloc = alloc;
	s->cxt = cxt;
	s->stack_size = 0;
	s->stack = NULL;
	s->next_fields = BLOCK_FIELDS_MIN;
	s->next_text = TEXT_BLOCK_MIN;
	ps_scan_reset(s);
	return s;
}

/* start over (a retried request): the memory already taken is reused */
void
ps_scan_reset(PsPageScan *s)
{
	s->state = S_VALUE;
	s->err = PS_SCAN_OK;
	s->shape = PS_SHAPE_OK;
	s->depth = 0;
	s->slen = 0;
	s->caplen = 0;
	s->ncaptures = 0;
	for (TapeBlock *b = s->first; b; b = b->next)
		b->n = 0;
	s->cur = s->first;
	for (TextBlock *t = s->text_first; t; t = t->next)
		t->used = 0;
	s->text = s->text_first;
	s->rec_start = NULL;
	s->last_mark = NULL;
	s->nrecords = 0;
	s->records_seen = 0;
	s->top_object = false;
	s->top_members = 0;
	s->total_pages = -1;
	s->in_record = false;
	if (s->mode == PS_SCAN_LIST)
		s->next_role = R_TOP;
	else if (s->mode == PS_SCAN_RECORD)
		s->next_role = R_RECORD;
	else
		s->next_role = R_ELEMENTS;
	s->next_node = 0;
}

/* ---------------------------------------------------------------- memory */

/* grow a buffer to hold need bytes; the old one stays with the allocator */
static bool
grow(PsPageScan *s, char **buf, size_t *cap, size_t len, size_t need)
{
	size_t		ncap = *cap ? *cap : 256;
	char	   *nb;

	while (ncap < need)
		ncap *= 2;
	nb = s->alloc(s->cxt, ncap);
	if (nb == NULL)
		return false;
	if (len)
		memcpy(nb, *buf, len);
	*buf = nb;
	*cap = ncap;
	return true;
}

#define SBUF_RESERVE(s, k) \
	((s)->slen + (k) <= (s)->scap || grow((s), &(s)->sbuf, &(s)->scap, (s)->slen, (s)->slen + (k)))

/* k bytes of text (NUL-terminated) for the tape, in a block after s->text */
static char *
text_alloc_block(PsPageScan *s, size_t k)
{
	TextBlock  *t = s->text;

	k++;
	while (t != NULL && t->used + k > t->cap)
		t = t->next;			/* after a reset: blocks to reuse */
	if (t == NULL)
	{
		size_t		cap = k > s->next_text ? k : s->next_text;

		if (s->next_text < TEXT_BLOCK_MAX)
			s->next_text *= 2;

		t = s->alloc(s->cxt, sizeof(TextBlock) + cap);
		if (t == NULL)
			return NULL;
		t->used = 0;
		t->cap = cap;
		t->next = NULL;
		if (s->text)
		{
			t->next = s->text->next;
			s->text->next = t;
		}
		else
			s->text_first = t;
	}
	s->text = t;
	t->used += k;
	return t->data + t->used - k;
}

/* k bytes of text (NUL-terminated) for the tape */
static inline char *
text_alloc(PsPageScan *s, size_t k)
{
	TextBlock  *t = s->text;

	if (t != NULL && t->used + k < t->cap)
	{
		t->used += k + 1;
		return t->data + t->used - k - 1;
	}
	return text_alloc_block(s, k);
}

/*
 * A new tape entry in a new block.  A record's fields stay in one block:
 * when the block is full, the record so far moves to the next one.
 */
static PsField *
tape_push_block(PsPageScan *s)
{
	TapeBlock  *b = s->cur;
	uint32_t	carry = 0;
	TapeBlock  *nb = b ? b->next : NULL;

	if (s->in_record && s->rec_start != NULL && b != NULL)
		carry = (uint32_t) (&b->f[b->n] - s->rec_start);
	if (nb != NULL && nb->cap < carry + 1)
		nb = NULL;
	if (nb == NULL)
	{
		uint32_t	cap = s->next_fields;

		if (s->next_fields < BLOCK_FIELDS_MAX)
			s->next_fields *= 2;
		while (cap < carry * 2 + 1)
			cap *= 2;
		nb = s->alloc(s->cxt, sizeof(TapeBlock) + sizeof(PsField) * cap);
		if (nb == NULL)
			return NULL;
		nb->cap = cap;
		nb->next = b ? b->next : NULL;
		if (b)
			b->next = nb;
		else
			s->first = nb;
	}
	nb->n = 0;
	if (carry)
	{
		memcpy(nb->f, s->rec_start, sizeof(PsField) * carry);
		b->n -= carry;
		s->rec_start = nb->f;
		nb->n = carry;
	}
	s->cur = b = nb;
	return &b->f[b->n++];
}

/* a new tape entry */
static inline PsField *
tape_push(PsPageScan *s)
{
	TapeBlock  *b = s->cur;

	if (b != NULL && b->n < b->cap)
		return &b->f[b->n++];
	return tape_push_block(s);
}

static ALWAYS_INLINE bool
add_field(PsPageScan *s, int slot, PsJsonType type, uint8_t flags,
		  const char *text, size_t len)
{
	PsField    *f;
	char	   *t;

	if (len > UINT32_MAX - 1)
		return false;
	f = tape_push(s);
	if (f == NULL)
		return false;
	f->slot = (uint16_t) slot;
	f->type = (uint8_t) type;
	f->flags = flags;
	f->len = (uint32_t) len;
	if (s->in_record && s->rec_start == NULL)
	{
		/* an object record starts with its first field: no mark */
		f->flags |= PS_FIELD_FIRST;
		s->rec_start = f;
	}
	s->last_mark = NULL;
	t = text_alloc(s, len);
	if (t == NULL)
		return false;
	ps_copy(t, text, len);
	t[len] = '\0';
	f->text = t;
	return true;
}

/* a mark: type, for count records */
static PsField *
push_mark(PsPageScan *s, PsJsonType type)
{
	PsField    *m = tape_push(s);

	if (m == NULL)
		return NULL;
	m->slot = PS_SLOT_RECORD;
	m->type = (uint8_t) type;
	m->flags = 0;
	m->len = 1;
	m->text = NULL;
	return m;
}

/*
 * A record starts.  An object's mark waits: its first field will start it,
 * or, with none, its end marks it.  Anything else is marked now (and an
 * array of elements holds its fields after the mark).
 */
static bool
record_begin(PsPageScan *s, PsJsonType type)
{
	s->in_record = true;
	s->rec_start = NULL;
	s->nrecords++;
	if (type != PS_JSON_OBJECT)
	{
		s->rec_start = push_mark(s, type);
		s->last_mark = NULL;
		if (s->rec_start == NULL)
			return false;
	}
	return true;
}

/* a record is over: a fieldless object record joins the mark before it */
static bool
record_end(PsPageScan *s)
{
	bool		empty_object = (s->rec_start == NULL);

	s->in_record = false;
	if (!empty_object)
		return true;
	if (s->last_mark != NULL && s->last_mark->len < UINT32_MAX)
	{
		s->last_mark->len++;
		return true;
	}
	s->last_mark = push_mark(s, PS_JSON_OBJECT);
	return s->last_mark != NULL;
}

/* ---------------------------------------------------------------- reading */

void
ps_scan_cursor(const PsPageScan *s, PsRecordCursor *c)
{
	c->block = s->first;
	c->pos = 0;
	c->repeat = 0;
	c->mark_type = PS_JSON_OBJECT;
}

bool
ps_scan_next_record(PsRecordCursor *c, PsJsonType *type,
					const PsField **fields, uint32_t *nfields)
{
	const TapeBlock *b = c->block;
	const PsField *e;
	uint32_t	start,
				end;

	if (c->repeat > 0)
	{
		/* one more record of a shared mark: no field */
		c->repeat--;
		*type = (PsJsonType) c->mark_type;
		*fields = NULL;
		*nfields = 0;
		return true;
	}
	while (b != NULL && c->pos >= b->n)
	{
		b = b->next;
		c->pos = 0;
	}
	c->block = b;
	if (b == NULL)
		return false;
	e = &b->f[c->pos];
	if (e->slot == PS_SLOT_RECORD)
	{
		c->mark_type = e->type;
		c->repeat = e->len - 1;
		*type = (PsJsonType) e->type;
		start = c->pos + 1;
	}
	else
	{
		/* an object record's first field */
		*type = PS_JSON_OBJECT;
		start = c->pos;
	}
	for (end = start; end < b->n; end++)
	{
		const PsField *f = &b->f[end];

		if (f->slot == PS_SLOT_RECORD || (end > c->pos && (f->flags & PS_FIELD_FIRST)))
			break;
	}
	*fields = &b->f[start];
	*nfields = end - start;
	c->pos = end;
	return true;
}

PsScanError
ps_scan_error(const PsPageScan *s)
{
	return s->err;
}

PsScanShape
ps_scan_shape(const PsPageScan *s)
{
	return s->shape;
}

uint64_t
ps_scan_nrecords(const PsPageScan *s)
{
	return s->nrecords;
}

int
ps_scan_total_pages(const PsPageScan *s)
{
	return s->total_pages;
}

/* ---------------------------------------------------------------- events */

/* compact text of captured containers */
#define CAP(s, c) \
	do { \
		if ((s)->ncaptures > 0) \
		{ \
			if ((s)->caplen == (s)->capcap && \
				!grow((s), &(s)->cap, &(s)->capcap, (s)->caplen, (s)->caplen + 1)) \
				return fail((s), PS_SCAN_ERR_OOM); \
			(s)->cap[(s)->caplen++] = (char) (c); \
		} \
	} while (0)

static PsScanError
fail(PsPageScan *s, PsScanError e)
{
	s->state = S_ERROR;
	s->err = e;
	return e;
}

/* the slot the value about to start fills, or -1 */
static inline int
next_slot(const PsPageScan *s)
{
	if (s->next_role == R_FIELD || s->next_role == R_RECORD)
		return s->spec->nodes[s->next_node].slot;
	if (s->next_role == R_ELEMENT)
		return 0;
	return -1;
}

/* forget the records so far: a later records key wins, as in a parsed object */
static void
tape_clear(PsPageScan *s)
{
	for (TapeBlock *b = s->first; b; b = b->next)
		b->n = 0;
	s->cur = s->first;
	s->rec_start = NULL;
	s->last_mark = NULL;
	s->nrecords = 0;
}

/* append one byte to the captured text */
static bool
cap_byte(PsPageScan *s, unsigned char c)
{
	if (s->caplen == s->capcap &&
		!grow(s, &s->cap, &s->capcap, s->caplen, s->caplen + 1))
	{
		fail(s, PS_SCAN_ERR_OOM);
		return false;
	}
	s->cap[s->caplen++] = (char) c;
	return true;
}

/* append k bytes to the captured text (when something is captured) */
static inline bool
cap_bytes(PsPageScan *s, const unsigned char *p, size_t k)
{
	if (s->ncaptures == 0)
		return true;
	if (s->caplen + k > s->capcap &&
		!grow(s, &s->cap, &s->capcap, s->caplen, s->caplen + k))
	{
		fail(s, PS_SCAN_ERR_OOM);
		return false;
	}
	ps_copy(s->cap + s->caplen, p, k);
	s->caplen += k;
	return true;
}

/* a container opens at byte c; false on error (set) */
static bool
open_container(PsPageScan *s, unsigned char c)
{
	bool		is_object = (c == '{');
	uint8_t		where = s->next_role;
	uint8_t		role = R_NONE;
	int			slot = -1;
	Frame	   *f;

	if (s->depth + 1 >= s->max_depth)
	{
		fail(s, PS_SCAN_ERR_DEPTH);
		return false;
	}
	if (s->depth == s->stack_size)
	{
		int			n = s->stack_size ? s->stack_size * 2 : STACK_MIN;
		Frame	   *ns;

		if (n > s->max_depth)
			n = s->max_depth;
		ns = s->alloc(s->cxt, sizeof(Frame) * n);
		if (ns == NULL)
			goto oom;
		if (s->depth)
			memcpy(ns, s->stack, sizeof(Frame) * s->depth);
		s->stack = ns;
		s->stack_size = n;
	}
	f = &s->stack[s->depth++];
	f->is_object = is_object;
	f->is_record = false;
	f->node = s->next_node;
	f->cap_slot = -1;

	switch (where)
	{
		case R_TOP:
			if (is_object)
			{
				role = R_TOP;
				s->top_object = true;
			}
			break;
		case R_RECORDS:
			if (is_object)
				s->shape = PS_SHAPE_NOT_ARRAY;
			else
			{
				if (s->records_seen++ > 0)
					tape_clear(s);
				s->shape = PS_SHAPE_OK;
				role = R_RECORDS;
			}
			break;
		case R_RECORD:
			if (!record_begin(s, is_object ? PS_JSON_OBJECT : PS_JSON_ARRAY))
				goto oom;
			f->is_record = true;
			if (is_object)
			{
				role = R_RECORD;
				slot = s->spec->nodes[0].slot;
			}
			break;
		case R_FIELD:
			if (is_object && s->spec->nodes[s->next_node].has_children)
				role = R_FIELD;
			slot = s->spec->nodes[s->next_node].slot;
			break;
		case R_PAGE_INFO:
			if (is_object)
				role = R_PAGE_INFO;
			break;
		case R_ELEMENTS:
			if (is_object)
				s->shape = PS_SHAPE_NOT_ARRAY;
			else
			{
				if (!record_begin(s, PS_JSON_ARRAY))
					goto oom;
				f->is_record = true;
				role = R_ELEMENTS;
			}
			break;
		case R_ELEMENT:
			slot = 0;
			break;
		default:
			break;
	}
	f->role = role;
	if (slot >= 0)
	{
		/* a wanted container: its compact text, from this byte on */
		if (s->caplen > UINT32_MAX - 1)
			goto oom;
		f->cap_slot = slot;
		f->cap_flags = 0;
		f->cap_start = (uint32_t) s->caplen;
		s->ncaptures++;
	}
	if (s->ncaptures > 0 && !cap_byte(s, c))
		return false;
	s->next_role = R_NONE;
	if (role == R_RECORDS)
		s->next_role = R_RECORD, s->next_node = 0;
	else if (role == R_ELEMENTS)
		s->next_role = R_ELEMENT;
	s->state = is_object ? S_OBJ_FIRST : S_ARR_FIRST;
	return true;

oom:
	fail(s, PS_SCAN_ERR_OOM);
	return false;
}

/* a value has ended: what comes next */
static inline void
value_done(PsPageScan *s)
{
	if (s->depth == 0)
		s->state = S_DONE;
	else if (s->stack[s->depth - 1].is_object)
	{
		if (s->depth == 1 && s->stack[0].role == R_TOP)
			s->top_members++;
		s->state = S_OBJ_NEXT;
	}
	else
	{
		Frame	   *f = &s->stack[s->depth - 1];

		s->state = S_ARR_NEXT;
		/* the next element sits where this one did */
		if (f->role == R_RECORDS)
			s->next_role = R_RECORD, s->next_node = 0;
		else if (f->role == R_ELEMENTS)
			s->next_role = R_ELEMENT;
		else
			s->next_role = R_NONE;
	}
}

/* a container closes (its byte already captured) */
static bool
close_container(PsPageScan *s)
{
	Frame	   *f = &s->stack[--s->depth];

	if (f->cap_slot >= 0)
	{
		if (!add_field(s, f->cap_slot, f->is_object ? PS_JSON_OBJECT : PS_JSON_ARRAY,
					   f->cap_flags, s->cap + f->cap_start, s->caplen - f->cap_start))
		{
			fail(s, PS_SCAN_ERR_OOM);
			return false;
		}
		if (--s->ncaptures == 0)
			s->caplen = 0;
	}
	if (f->is_record && !record_end(s))
	{
		fail(s, PS_SCAN_ERR_OOM);
		return false;
	}
	value_done(s);
	return true;
}

/* a scalar has been read: text[0..len) for strings and numbers */
static bool
scalar_done(PsPageScan *s, PsJsonType type, uint8_t flags, const char *text,
			size_t len)
{
	int			slot = next_slot(s);

	if (s->next_role == R_RECORD)
	{
		/* a record that is not an object */
		if (!record_begin(s, type) || !record_end(s))
			return false;
	}
	else if (s->next_role == R_TOTAL_PAGES)
	{
		if (type == PS_JSON_NUMBER && (flags & PS_FIELD_INTEGER))
		{
			long long	v = 0;
			bool		neg = text[0] == '-';

			for (size_t i = neg ? 1 : 0; i < len; i++)
			{
				v = v * 10 + (text[i] - '0');
				if (v > 0x7FFFFFFF)
				{
					v = 0x7FFFFFFF;
					break;
				}
			}
			s->total_pages = (int) (neg ? -v : v);
		}
	}
	else if (s->next_role == R_RECORDS || s->next_role == R_ELEMENTS)
		s->shape = PS_SHAPE_NOT_ARRAY;
	else if (slot >= 0)
	{
		if (!add_field(s, slot, type, flags, text, len))
			return false;
	}
	value_done(s);
	return true;
}

/* a key, text[0..len), has been read: where its value sits */
static void
key_done(PsPageScan *s, const char *text, size_t len)
{
	Frame	   *f = &s->stack[s->depth - 1];

	s->next_role = R_NONE;
	switch (f->role)
	{
		case R_TOP:
			if (len == s->records_keylen &&
				memcmp(text, s->records_key, len) == 0)
				s->next_role = R_RECORDS;
			else if (len == 9 && memcmp(text, "page_info", 9) == 0)
				s->next_role = R_PAGE_INFO;
			break;
		case R_PAGE_INFO:
			if (len == 11 && memcmp(text, "total_pages", 11) == 0)
				s->next_role = R_TOTAL_PAGES;
			break;
		case R_RECORD:
		case R_FIELD:
			{
				int			child = edge_find(s->spec, f->node, text, len);

				if (child >= 0)
				{
					s->next_role = R_FIELD;
					s->next_node = child;
				}
				break;
			}
		default:
			break;
	}
}

/* a code point as UTF-8 in sbuf */
static bool
put_code(PsPageScan *s, uint32_t c)
{
	if (!SBUF_RESERVE(s, 4))
		return false;
	if (c == 0)
		s->str_flags |= PS_FIELD_NUL;
	if (c < 0x80)
		s->sbuf[s->slen++] = (char) c;
	else if (c < 0x800)
	{
		s->sbuf[s->slen++] = (char) (0xC0 | (c >> 6));
		s->sbuf[s->slen++] = (char) (0x80 | (c & 0x3F));
	}
	else if (c < 0x10000)
	{
		s->sbuf[s->slen++] = (char) (0xE0 | (c >> 12));
		s->sbuf[s->slen++] = (char) (0x80 | ((c >> 6) & 0x3F));
		s->sbuf[s->slen++] = (char) (0x80 | (c & 0x3F));
	}
	else
	{
		s->sbuf[s->slen++] = (char) (0xF0 | (c >> 18));
		s->sbuf[s->slen++] = (char) (0x80 | ((c >> 12) & 0x3F));
		s->sbuf[s->slen++] = (char) (0x80 | ((c >> 6) & 0x3F));
		s->sbuf[s->slen++] = (char) (0x80 | (c & 0x3F));
	}
	return true;
}

static inline int
hexdigit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* what a one-letter escape (after '\\') stands for; -1: none (\\u aside) */
static inline int
simple_escape(unsigned char c)
{
	switch (c)
	{
		case '"':
		case '\\':
		case '/':
			return c;
		case 'b':
			return '\b';
		case 'f':
			return '\f';
		case 'n':
			return '\n';
		case 'r':
			return '\r';
		case 't':
			return '\t';
		default:
			return -1;
	}
}

/* the high surrogate before stands alone: U+FFFD for it; false: no memory */
static inline bool
lone_surrogate(PsPageScan *s)
{
	s->hi_surrogate = 0;
	return put_code(s, 0xFFFD);
}

/* a complete \uXXXX escape: surrogates paired, or U+FFFD */
static bool
escape_code(PsPageScan *s, uint32_t c)
{
	if (s->hi_surrogate)
	{
		uint32_t	hi = s->hi_surrogate;

		if (c >= 0xDC00 && c <= 0xDFFF)
		{
			s->hi_surrogate = 0;
			return put_code(s, 0x10000 + ((hi - 0xD800) << 10) + (c - 0xDC00));
		}
		if (!lone_surrogate(s))
			return false;
	}
	if (c >= 0xD800 && c <= 0xDBFF)
	{
		s->hi_surrogate = c;
		s->str_state = STR_LOW_BS;
		return true;
	}
	if (c >= 0xDC00 && c <= 0xDFFF)
		c = 0xFFFD;
	return put_code(s, c);
}

/* a string (a key or a value) starts after its quote */
static inline void
string_begin(PsPageScan *s, bool in_key)
{
	s->state = S_STRING;
	s->in_key = in_key;
	if (in_key)
	{
		uint8_t		role = s->stack[s->depth - 1].role;

		s->str_keep = (role == R_TOP || role == R_PAGE_INFO ||
					   role == R_RECORD || role == R_FIELD);
	}
	else
		s->str_keep = next_slot(s) >= 0;
	s->slen = 0;
	s->str_state = STR_PLAIN;
	s->str_flags = 0;
	s->hi_surrogate = 0;
	s->u8_need = 0;
}

/*
 * A value starts at byte c: containers and strings consume it (*consumed),
 * numbers and literals read it again in their state.  False: c starts no
 * value.
 */
static inline bool
value_start(PsPageScan *s, unsigned char c, bool *consumed)
{
	*consumed = true;
	switch (c)
	{
		case '{':
		case '[':
			(void) open_container(s, c);
			return true;
		case '"':
			string_begin(s, false);
			if (s->ncaptures > 0)
				(void) cap_byte(s, c);
			return true;
		case 't':
		case 'f':
		case 'n':
			*consumed = false;
			s->state = S_LITERAL;
			s->slen = 0;
			s->lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
			s->littype = c == 't' ? PS_JSON_TRUE : c == 'f' ? PS_JSON_FALSE : PS_JSON_NULL;
			s->litpos = 0;
			return true;
		case '-':
		case '0':
		case '1':
		case '2':
		case '3':
		case '4':
		case '5':
		case '6':
		case '7':
		case '8':
		case '9':
			*consumed = false;
			s->state = S_NUMBER;
			s->slen = 0;
			s->num_state = N_MINUS;
			s->num_int = true;
			return true;
		default:
			return false;
	}
}

/*
 * A UTF-8 lead byte: how many continuation bytes follow, and the bounds of
 * the first (the later ones are 0x80..0xBF); false: c leads nothing (no
 * overlong forms, no surrogates, nothing above U+10FFFF).
 */
static inline bool
utf8_lead(unsigned char c, uint8_t *need, uint8_t *lo, uint8_t *hi)
{
	*lo = 0x80;
	*hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF)
		*need = 1;
	else if (c >= 0xE0 && c <= 0xEF)
	{
		*need = 2;
		if (c == 0xE0)
			*lo = 0xA0;
		else if (c == 0xED)
			*hi = 0x9F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		*need = 3;
		if (c == 0xF0)
			*lo = 0x90;
		else if (c == 0xF4)
			*hi = 0x8F;
	}
	else
		return false;
	return true;
}

static inline bool
is_ws(unsigned char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline const unsigned char *
skip_ws(const unsigned char *p, const unsigned char *end)
{
	/* every white space byte is <= ' ': one test for the usual token */
	while (p < end && *p <= ' ' && is_ws(*p))
		p++;
	return p;
}

/* ---------------------------------------------------------------- whole records */

/*
 * Most records arrive whole in one chunk: a gzip'd page is decoded whole,
 * and libcurl hands over 16 kB at a time.  Such a record is read here by
 * recursive descent straight from the buffer, without the state machine's
 * dispatch per byte, into the same tape through the same calls (record_begin,
 * add_field, record_end) in the same order.  Whatever it cannot finish (the
 * chunk ends inside the record, the JSON is wrong, memory runs out, nesting
 * goes deeper than WHOLE_MAX_NEST) it undoes, and the state machine reads
 * the record from its '{' again: records cut by a chunk and every error have
 * one reader, the state machine.
 */
#define WHOLE_MAX_NEST	32

typedef struct Whole
{
	PsPageScan *s;
	const unsigned char *end;
	uint32_t	nuls;			/* strings read holding U+0000 */
	const unsigned char *cap_from;	/* while a container is captured: the
									 * bytes from here on are still to add */
} Whole;

/* where the tape stood before a record, to undo it */
typedef struct TapeMark
{
	TapeBlock  *cur;
	uint32_t	n;
	TextBlock  *text;
	size_t		used;
	PsField    *rec_start;
	PsField    *last_mark;
	uint32_t	last_mark_len;
	uint64_t	nrecords;
	bool		in_record;
} TapeMark;

static void
tape_mark(const PsPageScan *s, TapeMark *m)
{
	m->cur = s->cur;
	m->n = s->cur ? s->cur->n : 0;
	m->text = s->text;
	m->used = s->text ? s->text->used : 0;
	m->rec_start = s->rec_start;
	m->last_mark = s->last_mark;
	m->last_mark_len = s->last_mark ? s->last_mark->len : 0;
	m->nrecords = s->nrecords;
	m->in_record = s->in_record;
}

static void
tape_undo(PsPageScan *s, const TapeMark *m)
{
	/* blocks after the mark's hold only what is undone */
	for (TapeBlock *b = m->cur ? m->cur->next : s->first; b; b = b->next)
		b->n = 0;
	s->cur = m->cur;
	if (m->cur)
		m->cur->n = m->n;
	for (TextBlock *t = m->text ? m->text->next : s->text_first; t; t = t->next)
		t->used = 0;
	s->text = m->text;
	if (m->text)
		m->text->used = m->used;
	s->rec_start = m->rec_start;
	s->last_mark = m->last_mark;
	if (m->last_mark)
		m->last_mark->len = m->last_mark_len;
	s->nrecords = m->nrecords;
	s->in_record = m->in_record;
	s->ncaptures = 0;
	s->caplen = 0;
	s->state = S_VALUE;
	s->err = PS_SCAN_OK;
}

/*
 * A string from p (after its opening quote), plain up to q: its value in
 * *text and *len (decoded into sbuf), its flags in str_flags.  Returns the
 * byte after the closing quote; NULL when the chunk ends first or the
 * string is not valid.  The decoding is the state machine's: the same
 * escape_code and put_code, the same UTF-8 bounds.
 */
static const unsigned char *
whole_string_decode(Whole *w, const unsigned char *p, const unsigned char *q,
					const char **text, size_t *len)
{
	PsPageScan *s = w->s;
	const unsigned char *end = w->end;

	s->slen = 0;
	s->hi_surrogate = 0;
	for (;;)
	{
		unsigned char c;

		if (q > p)
		{
			if (!SBUF_RESERVE(s, (size_t) (q - p)))
				return NULL;
			ps_copy(s->sbuf + s->slen, p, q - p);
			s->slen += q - p;
		}
		if (q == end)
			return NULL;
		c = *q;
		if (c == '"')
			break;
		if (c == '\\')
		{
			if (end - q < 2)
				return NULL;
			c = q[1];
			if (c == 'u')
			{
				uint32_t	v = 0;

				if (end - q < 6)
					return NULL;
				for (int i = 2; i < 6; i++)
				{
					int			h = hexdigit(q[i]);

					if (h < 0)
						return NULL;
					v = (v << 4) | (uint32_t) h;
				}
				if (!escape_code(s, v))
					return NULL;
				q += 6;
				/* a high surrogate not followed by an escape stands alone */
				if (s->hi_surrogate)
				{
					if (q == end)
						return NULL;
					if (*q != '\\' && !lone_surrogate(s))
						return NULL;
				}
			}
			else
			{
				int			out = simple_escape(c);

				if (s->hi_surrogate && !lone_surrogate(s))
					return NULL;
				if (out < 0 || !SBUF_RESERVE(s, 1))
					return NULL;
				s->sbuf[s->slen++] = (char) out;
				q += 2;
			}
		}
		else if (c < 0x80)
		{
			/* a raw control character, kept */
			if (c == 0)
				s->str_flags |= PS_FIELD_NUL;
			if (!SBUF_RESERVE(s, 1))
				return NULL;
			s->sbuf[s->slen++] = (char) c;
			q++;
		}
		else
		{
			uint8_t		need,
						lo,
						hi;

			if (!utf8_lead(c, &need, &lo, &hi))
				return NULL;
			if (end - q <= need)
				return NULL;
			if (q[1] < lo || q[1] > hi)
				return NULL;
			for (int i = 2; i <= need; i++)
				if (q[i] < 0x80 || q[i] > 0xBF)
					return NULL;
			if (!SBUF_RESERVE(s, need + 1))
				return NULL;
			memcpy(s->sbuf + s->slen, q, need + 1);
			s->slen += need + 1;
			q += need + 1;
		}
		p = q;
		q = ps_ascii_run(p, end);
	}
	*text = s->sbuf;
	*len = s->slen;
	return q + 1;
}

/* the usual string, plain ASCII, read in place; else decoded */
static inline const unsigned char *
whole_string(Whole *w, const unsigned char *p, const char **text, size_t *len)
{
	const unsigned char *q = ps_ascii_run(p, w->end);

	w->s->str_flags = 0;
	if (q < w->end && *q == '"')
	{
		*text = (const char *) p;
		*len = (size_t) (q - p);
		return q + 1;
	}
	return whole_string_decode(w, p, q, text, len);
}

static inline bool
digit_at(const unsigned char *p, const unsigned char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* a number from p: the byte after it, NULL when it may go on past the chunk */
static const unsigned char *
whole_number(const unsigned char *p, const unsigned char *end, bool *integer)
{
	*integer = true;
	if (*p == '-')
		p++;
	if (digit_at(p, end) && *p == '0')
		p++;
	else if (digit_at(p, end))
		while (digit_at(p, end))
			p++;
	else
		return NULL;
	if (p < end && *p == '.')
	{
		*integer = false;
		p++;
		if (!digit_at(p, end))
			return NULL;
		while (digit_at(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		*integer = false;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!digit_at(p, end))
			return NULL;
		while (digit_at(p, end))
			p++;
	}
	return p < end ? p : NULL;
}

/*
 * A captured container's text is the chunk's bytes less the white space
 * between tokens: it is added a run at a time, up to each white space
 * skipped and at the container's end, not token by token.
 */
static inline bool
whole_cap_flush(Whole *w, const unsigned char *to)
{
	if (w->cap_from != NULL && to > w->cap_from &&
		!cap_bytes(w->s, w->cap_from, (size_t) (to - w->cap_from)))
		return false;
	return true;
}

/* white space from p: past it, the run before it captured; NULL: no memory */
static inline const unsigned char *
whole_ws(Whole *w, const unsigned char *p)
{
	const unsigned char *q = skip_ws(p, w->end);

	if (q != p && w->cap_from != NULL)
	{
		if (!whole_cap_flush(w, p))
			return NULL;
		w->cap_from = q;
	}
	return q;
}

/*
 * Past the structural byte at p ('{', '[', ':' or ',') and the white space
 * after it; NULL at the chunk's end.
 */
static inline const unsigned char *
whole_past(Whole *w, const unsigned char *p)
{
	p = whole_ws(w, p + 1);
	return p != NULL && p < w->end ? p : NULL;
}

static const unsigned char *whole_container(Whole *w, const unsigned char *p,
											int node, int slot, bool record,
											int depth, int nest);

/*
 * A value at p (no white space before it) that sits at spec node `node`
 * (-1: none) and fills `slot` (-1: none), inside `depth` open containers.
 */
static const unsigned char *
whole_value(Whole *w, const unsigned char *p, int node, int slot, int depth,
			int nest)
{
	PsPageScan *s = w->s;
	const unsigned char *q;
	const char *text;
	size_t		len;
	PsJsonType	type;
	uint8_t		flags;

	switch (*p)
	{
		case '{':
		case '[':
			return whole_container(w, p, node, slot, false, depth, nest);
		case '"':
			q = whole_string(w, p + 1, &text, &len);
			if (q == NULL)
				return NULL;
			type = PS_JSON_STRING;
			flags = s->str_flags;
			if (flags & PS_FIELD_NUL)
				w->nuls++;
			break;
		case 't':
		case 'f':
		case 'n':
			{
				const char *lit = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
				size_t		k = strlen(lit);

				if ((size_t) (w->end - p) < k || memcmp(p, lit, k) != 0)
					return NULL;
				q = p + k;
				type = *p == 't' ? PS_JSON_TRUE : *p == 'f' ? PS_JSON_FALSE : PS_JSON_NULL;
				flags = 0;
				text = "";
				len = 0;
				break;
			}
		default:
			{
				bool		integer;

				q = whole_number(p, w->end, &integer);
				if (q == NULL)
					return NULL;
				type = PS_JSON_NUMBER;
				flags = integer ? PS_FIELD_INTEGER : 0;
				text = (const char *) p;
				len = (size_t) (q - p);
				break;
			}
	}
	if (slot >= 0 && !add_field(s, slot, type, flags, text, len))
		return NULL;
	return q;
}

/*
 * An object or array at p, at spec node `node` and filling `slot` (-1:
 * none); a record when `record`: an object record (node 0), or the array
 * of elements mode, whose elements fill slot 0.  Keys are looked up where
 * the state machine looks them up: in an object record, and in a wanted
 * object with wanted children.
 */
static const unsigned char *
whole_container(Whole *w, const unsigned char *p, int node, int slot,
				bool record, int depth, int nest)
{
	PsPageScan *s = w->s;
	const unsigned char *end = w->end;
	unsigned char close = (*p == '{') ? '}' : ']';
	bool		is_object = (close == '}');
	bool		keys = is_object && node >= 0 &&
		(record || s->spec->nodes[node].has_children);
	uint32_t	cap_start = 0;
	uint32_t	nuls = w->nuls;

	if (depth + 1 >= s->max_depth || nest >= WHOLE_MAX_NEST)
		return NULL;
	if (record && !record_begin(s, is_object ? PS_JSON_OBJECT : PS_JSON_ARRAY))
		return NULL;
	if (slot >= 0)
	{
		/* the enclosing capture's bytes so far, then this one's */
		if (!whole_cap_flush(w, p))
			return NULL;
		w->cap_from = p;
		if (s->caplen > UINT32_MAX - 1)
			return NULL;
		cap_start = (uint32_t) s->caplen;
		s->ncaptures++;
	}
	if ((p = whole_past(w, p)) == NULL)
		return NULL;
	if (*p != close)
	{
		for (;;)
		{
			int			child = -1;

			if (is_object)
			{
				const char *text;
				size_t		len;

				if (*p != '"' || (p = whole_string(w, p + 1, &text, &len)) == NULL)
					return NULL;
				if (s->str_flags & PS_FIELD_NUL)
					w->nuls++;
				if (keys)
					child = edge_find(s->spec, node, text, len);
				if ((p = whole_ws(w, p)) == NULL ||
					p == end || *p != ':' || (p = whole_past(w, p)) == NULL)
					return NULL;
			}
			p = whole_value(w, p, child,
							child >= 0 ? s->spec->nodes[child].slot : record && !is_object ? 0 : -1,
							depth + 1, nest + 1);
			if (p == NULL)
				return NULL;
			if ((p = whole_ws(w, p)) == NULL || p == end)
				return NULL;
			if (*p != ',')
				break;
			if ((p = whole_past(w, p)) == NULL)
				return NULL;
		}
		if (*p != close)
			return NULL;
	}
	if (slot >= 0)
	{
		if (!whole_cap_flush(w, p + 1))
			return NULL;
		w->cap_from = p + 1;
		if (!add_field(s, slot, is_object ? PS_JSON_OBJECT : PS_JSON_ARRAY,
					   w->nuls != nuls ? PS_FIELD_NUL : 0,
					   s->cap + cap_start, s->caplen - cap_start))
			return NULL;
		if (--s->ncaptures == 0)
		{
			s->caplen = 0;
			w->cap_from = NULL;
		}
	}
	if (record && !record_end(s))
		return NULL;
	return p + 1;
}

/*
 * A record starts at p (an object record's '{', or the '[' of the array of
 * elements mode): read it whole if it is all in the chunk.  The byte after
 * it, or NULL with nothing changed.
 */
static const unsigned char *
whole_record(PsPageScan *s, const unsigned char *p, const unsigned char *end)
{
	Whole		w;
	TapeMark	m;
	const unsigned char *q;

	w.s = s;
	w.end = end;
	w.nuls = 0;
	w.cap_from = NULL;
	tape_mark(s, &m);
	if (*p == '{')
		q = whole_container(&w, p, 0, s->spec->nodes[0].slot, true, s->depth, 0);
	else
		q = whole_container(&w, p, -1, -1, true, s->depth, 0);
	if (q == NULL)
	{
		tape_undo(s, &m);
		return NULL;
	}
	value_done(s);
	return q;
}

/* ---------------------------------------------------------------- feeding */

PsScanError
ps_scan_feed(PsPageScan *s, const char *buf, size_t n)
{
	const unsigned char *p = (const unsigned char *) buf;
	const unsigned char *end = p + n;
	const char *text;			/* a string just read: in sbuf, or in buf */
	size_t		len;

	while (p < end)
	{
		unsigned char c = *p;

		/* white space between tokens (a number's end is its own) */
		if (is_ws(c) && s->state != S_STRING && s->state != S_NUMBER &&
			s->state != S_LITERAL && s->state != S_ERROR)
		{
			p++;
			continue;
		}
		switch (s->state)
		{
			case S_ERROR:
				return s->err;

			case S_OBJ_FIRST:
			case S_ARR_FIRST:
				if (c == (s->state == S_OBJ_FIRST ? '}' : ']'))
				{
					/* an empty container */
					CAP(s, c);
					p++;
					if (!close_container(s))
						return s->err;
					break;
				}
				/* read c again as a key or a value */
				s->state = (s->state == S_OBJ_FIRST) ? S_OBJ_KEY : S_VALUE;
				continue;

			case S_VALUE:
		value:
				if (((c == '{' && s->next_role == R_RECORD) ||
					 (c == '[' && s->next_role == R_ELEMENTS)) && s->ncaptures == 0)
				{
					const unsigned char *q = whole_record(s, p, end);

					if (q != NULL)
					{
						p = q;
						goto after_value;
					}
				}
				{
					bool		consumed;

					if (!value_start(s, c, &consumed))
						return fail(s, PS_SCAN_ERR_UNEXPECTED);
					if (consumed)
						p++;
				}
				if (s->state == S_STRING && p < end)
				{
					c = *p;
					goto in_string;
				}
				break;

			case S_OBJ_KEY:
				if (c != '"')
					return fail(s, PS_SCAN_ERR_KEY);
				CAP(s, c);
				p++;
				string_begin(s, true);
				break;

			case S_COLON:
				if (c != ':')
					return fail(s, PS_SCAN_ERR_COLON);
				CAP(s, c);
				p++;
				s->state = S_VALUE;
				break;

			case S_ARR_NEXT:
			case S_OBJ_NEXT:
		next_member:
				{
					bool		in_object = (s->state == S_OBJ_NEXT);

					CAP(s, c);
					p++;
					if (c == ',')
					{
						s->state = in_object ? S_OBJ_KEY : S_VALUE;
						if (in_object)
						{
							/* the usual ', "' in this same turn */
							s->next_role = R_NONE;
							p = skip_ws(p, end);
							if (p < end && *p == '"')
							{
								CAP(s, '"');
								string_begin(s, true);
								if (++p < end)
								{
									c = *p;
									goto in_string;
								}
							}
						}
					}
					else if (c == (in_object ? '}' : ']'))
					{
						if (!close_container(s))
							return s->err;
						goto after_value;
					}
					else
						return fail(s, in_object ? PS_SCAN_ERR_OBJECT_SEP : PS_SCAN_ERR_ARRAY_SEP);
				}
				break;

			case S_DONE:
				return fail(s, PS_SCAN_ERR_UNEXPECTED);

			case S_LITERAL:
				{
					/* the whole literal at once, when it is all here */
					size_t		k = strlen(s->lit + s->litpos);

					if ((size_t) (end - p) >= k && memcmp(p, s->lit + s->litpos, k) == 0)
					{
						if (!cap_bytes(s, p, k))
							return s->err;
						p += k;
						if (!scalar_done(s, (PsJsonType) s->littype, 0, "", 0))
							return fail(s, PS_SCAN_ERR_OOM);
						goto after_value;
					}
				}
				if (c != (unsigned char) s->lit[s->litpos])
					return fail(s, s->littype == PS_JSON_NULL ? PS_SCAN_ERR_NULL : PS_SCAN_ERR_BOOL);
				CAP(s, c);
				p++;
				if (s->lit[++s->litpos] == '\0')
				{
					if (!scalar_done(s, (PsJsonType) s->littype, 0, "", 0))
						return fail(s, PS_SCAN_ERR_OOM);
				}
				break;

			case S_NUMBER:
				{
					bool		ok = true;
					bool		more = true;

					if ((s->num_state == N_INT || s->num_state == N_FRAC ||
						 s->num_state == N_EXP) && c >= '0' && c <= '9')
					{
						/* a run of digits at once */
						const unsigned char *q = p;

						while (q < end && *q >= '0' && *q <= '9')
							q++;
						if (!SBUF_RESERVE(s, q - p))
							return fail(s, PS_SCAN_ERR_OOM);
						memcpy(s->sbuf + s->slen, p, q - p);
						s->slen += q - p;
						if (!cap_bytes(s, p, q - p))
							return s->err;
						p = q;
						if (p == end)
							break;
						c = *p;
					}

					switch (s->num_state)
					{
						case N_MINUS:
							/* the first byte, or the byte after '-' */
							if (c == '-' && s->slen == 0)
								break;
							if (c == '0')
								s->num_state = N_ZERO;
							else if (c >= '1' && c <= '9')
								s->num_state = N_INT;
							else
								ok = false;
							break;
						case N_ZERO:
						case N_INT:
							if (c >= '0' && c <= '9')
								ok = (s->num_state == N_INT);
							else if (c == '.')
								s->num_state = N_DOT, s->num_int = false;
							else if (c == 'e' || c == 'E')
								s->num_state = N_E, s->num_int = false;
							else
								more = false;
							break;
						case N_DOT:
							if (c >= '0' && c <= '9')
								s->num_state = N_FRAC;
							else
								ok = false;
							break;
						case N_FRAC:
							if (c == 'e' || c == 'E')
								s->num_state = N_E;
							else if (!(c >= '0' && c <= '9'))
								more = false;
							break;
						case N_E:
							if (c == '+' || c == '-')
								s->num_state = N_ESIGN;
							else if (c >= '0' && c <= '9')
								s->num_state = N_EXP;
							else
								ok = false;
							break;
						case N_ESIGN:
							if (c >= '0' && c <= '9')
								s->num_state = N_EXP;
							else
								ok = false;
							break;
						case N_EXP:
							if (!(c >= '0' && c <= '9'))
								more = false;
							break;
					}
					if (!ok)
						return fail(s, PS_SCAN_ERR_NUMBER);
					if (!more)
					{
						/* c is not part of it: read it again after */
						if (!scalar_done(s, PS_JSON_NUMBER, s->num_int ? PS_FIELD_INTEGER : 0,
								 s->sbuf, s->slen))
							return fail(s, PS_SCAN_ERR_OOM);
						goto after_value;
					}
					if (!SBUF_RESERVE(s, 1))
						return fail(s, PS_SCAN_ERR_OOM);
					s->sbuf[s->slen++] = (char) c;
					CAP(s, c);
					p++;
					break;
				}

			case S_STRING:
		in_string:
				if (s->str_state == STR_PLAIN && s->u8_need == 0)
				{
					/* the common case: a run of plain ASCII */
					const unsigned char *q = ps_ascii_run(p, end);

					if (q > p)
					{
						size_t		k = (size_t) (q - p);

						if (s->slen == 0 && q < end && *q == '"')
						{
							/* the whole string is here: read in place */
							if (!cap_bytes(s, p, k + 1))
								return s->err;
							text = (const char *) p;
							len = k;
							p = q + 1;
							goto string_end;
						}
						if (s->str_keep)
						{
							if (!SBUF_RESERVE(s, k))
								return fail(s, PS_SCAN_ERR_OOM);
							memcpy(s->sbuf + s->slen, p, k);
							s->slen += k;
						}
						if (!cap_bytes(s, p, k))
							return s->err;
						p = q;
						if (p == end)
							break;
						/* what ends the run is read in this same turn */
						c = *p;
					}
				}
				CAP(s, c);
				p++;
				if (s->u8_need > 0)
				{
					/* a continuation byte of a UTF-8 character */
					if (c < s->u8_lo || c > s->u8_hi)
						return fail(s, PS_SCAN_ERR_UTF8);
					s->u8_lo = 0x80;
					s->u8_hi = 0xBF;
					s->u8_need--;
					if (!SBUF_RESERVE(s, 1))
						return fail(s, PS_SCAN_ERR_OOM);
					s->sbuf[s->slen++] = (char) c;
					break;
				}
				switch (s->str_state)
				{
					case STR_LOW_BS:
						if (c == '\\')
						{
							s->str_state = STR_LOW_U;
							break;
						}
						/* an unpaired high surrogate */
						if (!lone_surrogate(s))
							return fail(s, PS_SCAN_ERR_OOM);
						s->str_state = STR_PLAIN;
						goto plain;
					case STR_LOW_U:
						if (c == 'u')
						{
							s->str_state = STR_HEX;
							s->hexn = 0;
							s->hexval = 0;
							break;
						}
						if (!lone_surrogate(s))
							return fail(s, PS_SCAN_ERR_OOM);
						goto escape;
					case STR_ESC:
				escape:
						s->str_state = STR_PLAIN;
						if (c == 'u')
						{
							s->str_state = STR_HEX;
							s->hexn = 0;
							s->hexval = 0;
							continue;
						}
						{
							int			out = simple_escape(c);

							if (out < 0)
								return fail(s, PS_SCAN_ERR_STRING);
							if (!SBUF_RESERVE(s, 1))
								return fail(s, PS_SCAN_ERR_OOM);
							s->sbuf[s->slen++] = (char) out;
						}
						break;
					case STR_HEX:
						{
							int			h = hexdigit(c);

							if (h < 0)
								return fail(s, PS_SCAN_ERR_STRING);
							s->hexval = (s->hexval << 4) | (uint32_t) h;
							if (++s->hexn == 4)
							{
								s->str_state = STR_PLAIN;
								if (!escape_code(s, s->hexval))
									return fail(s, PS_SCAN_ERR_OOM);
							}
						}
						break;
					default:
				plain:
						if (c == '"')
						{
							text = s->sbuf;
							len = s->slen;
					string_end:
							/* the containers being captured hold a NUL now */
							if ((s->str_flags & PS_FIELD_NUL) && s->ncaptures > 0)
								for (int d = 0; d < s->depth; d++)
									if (s->stack[d].cap_slot >= 0)
										s->stack[d].cap_flags |= PS_FIELD_NUL;
							if (s->in_key)
							{
								key_done(s, text, len);
								s->state = S_COLON;
								/* the usual ": " and the value, in this same turn */
								p = skip_ws(p, end);
								if (p < end && *p == ':')
								{
									CAP(s, ':');
									p = skip_ws(p + 1, end);
									s->state = S_VALUE;
									if (p < end)
									{
										c = *p;
										goto value;
									}
								}
								break;
							}
							if (!scalar_done(s, PS_JSON_STRING, s->str_flags, text, len))
								return fail(s, PS_SCAN_ERR_OOM);
							goto after_value;
						}
						if (c == '\\')
						{
							s->str_state = STR_ESC;
							break;
						}
						/* the lead byte of a UTF-8 character */
						if (c >= 0x80 && !utf8_lead(c, &s->u8_need, &s->u8_lo, &s->u8_hi))
							return fail(s, PS_SCAN_ERR_UTF8);
						/* raw control characters are kept, as json-c does */
						if (c == 0)
							s->str_flags |= PS_FIELD_NUL;
						if (!SBUF_RESERVE(s, 1))
							return fail(s, PS_SCAN_ERR_OOM);
						s->sbuf[s->slen++] = (char) c;
						break;
				}
				break;
		}
		if (s->state == S_ERROR)
			return s->err;
		continue;

after_value:
		/* a value has ended: the usual ", " and what follows, in this same turn */
		p = skip_ws(p, end);
		if (p < end && (s->state == S_OBJ_NEXT || s->state == S_ARR_NEXT))
		{
			c = *p;
			goto next_member;
		}
	}
	return s->err;
}

/* the body is complete */
PsScanError
ps_scan_finish(PsPageScan *s)
{
	if (s->state == S_ERROR)
		return s->err;
	if (s->state == S_NUMBER &&
		(s->num_state == N_ZERO || s->num_state == N_INT ||
		 s->num_state == N_FRAC || s->num_state == N_EXP) && s->depth == 0)
	{
		if (!scalar_done(s, PS_JSON_NUMBER, s->num_int ? PS_FIELD_INTEGER : 0,
								 s->sbuf, s->slen))
			return fail(s, PS_SCAN_ERR_OOM);
	}
	if (s->state != S_DONE)
		return fail(s, PS_SCAN_INCOMPLETE);
	/* a list without its records key; {} is told apart (keywords: none) */
	if (s->mode == PS_SCAN_LIST && s->records_seen == 0 && s->shape == PS_SHAPE_OK)
		s->shape = s->top_object && s->top_members == 0 ? PS_SHAPE_EMPTY : PS_SHAPE_NO_KEY;
	return PS_SCAN_OK;
}
