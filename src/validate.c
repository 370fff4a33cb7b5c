/*-------------------------------------------------------------------------
 *
 * validate.c
 *		Checks of written values, in plain C (see validate.h).
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "validate.h"

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static const char *
say(char *why, size_t whylen, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return why;
}

const char *
ps_email_problem(const char *s, char *why, size_t whylen)
{
	const char *at = strchr(s, '@');
	const char *domain;
	const char *label;
	size_t		len = strlen(s);
	int			tld_alpha = 0;

	if (len > 254)
		return say(why, whylen, "is longer than 254 bytes");
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (*p <= ' ' || *p == 0x7f || strchr("\"(),:;<>[\\]", *p) != NULL)
			return say(why, whylen, "contains a space, a control character or one of \" ( ) , : ; < > [ \\ ]");
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return say(why, whylen, "must contain exactly one @");
	if (at == s || at - s > 64)
		return say(why, whylen, "must have 1 to 64 bytes before the @");
	if (s[0] == '.' || at[-1] == '.' || strstr(s, "..") != NULL)
		return say(why, whylen, "has a dot at the start or end of its local part, or two dots in a row");
	domain = at + 1;
	if (strchr(domain, '.') == NULL)
		return say(why, whylen, "has a domain without a dot");
	label = domain;
	for (const char *p = domain;; p++)
	{
		if (*p == '.' || *p == '\0')
		{
			size_t		llen = p - label;

			if (llen == 0 || llen > 63)
				return say(why, whylen, "has an empty domain label or one longer than 63 bytes");
			if (label[0] == '-' || p[-1] == '-')
				return say(why, whylen, "has a domain label starting or ending with a hyphen");
			tld_alpha = 0;
			for (const char *q = label; q < p; q++)
				if (!isdigit((unsigned char) *q) && *q != '-')
					tld_alpha = 1;
			if (*p == '\0')
				break;
			label = p + 1;
		}
		else if (!isalnum((unsigned char) *p) && *p != '-' && !((unsigned char) *p & 0x80))
			return say(why, whylen, "has a domain with a character other than letters, digits, hyphens and dots");
	}
	if (strlen(label) < 2 || !tld_alpha)
		return say(why, whylen, "has a top-level domain that is not a name of at least 2 characters");
	return NULL;
}

const char *
ps_event_type_problem(const char *s, char *why, size_t whylen)
{
	if (s[0] == '\0' ||
		strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(s))
		return say(why, whylen, "must be one or more letters, digits and underscores");
	return NULL;
}

const char *
ps_origin_problem(const char *s, char *why, size_t whylen)
{
	if (strcmp(s, "website") != 0 && strcmp(s, "social") != 0 && strcmp(s, "other") != 0)
		return say(why, whylen, "must be website, social or other");
	return NULL;
}

const char *
ps_customer_id_problem(const char *s, char *why, size_t whylen)
{
	size_t		len = strlen(s);

	if (len == 0 || len > 18 || strspn(s, "0123456789") != len || strspn(s, "0") == len)
		return say(why, whylen, "must be a positive integer");
	return NULL;
}

/* the JSON type's name, for messages */
static const char *
type_name(struct json_object *v)
{
	switch (json_object_get_type(v))
	{
		case json_type_null:
			return "null";
		case json_type_boolean:
			return "a boolean";
		case json_type_double:
			return "a number with a fraction";
		case json_type_int:
			return "an integer";
		case json_type_object:
			return "an object";
		case json_type_array:
			return "an array";
		case json_type_string:
			return "a string";
	}
	return "an unknown value";
}

const char *
ps_properties_problem(struct json_object *v, char *why, size_t whylen)
{
	struct json_object_iterator it;
	struct json_object_iterator end;
	int			n;

	if (ps_object_problem(v, why, whylen) != NULL)
		return why;
	n = json_object_object_length(v);
	if (n > PS_MAX_PROPERTIES)
		return say(why, whylen, "has %d keys; Postscript takes at most %d",
				   n, PS_MAX_PROPERTIES);
	it = json_object_iter_begin(v);
	end = json_object_iter_end(v);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
	{
		const char *key = json_object_iter_peek_name(&it);
		struct json_object *val = json_object_iter_peek_value(&it);

		if (key[0] == '\0')
			return say(why, whylen, "has an empty key");
		if (json_object_is_type(val, json_type_array))
		{
			for (size_t i = 0; i < json_object_array_length(val); i++)
			{
				struct json_object *e = json_object_array_get_idx(val, i);

				if (!json_object_is_type(e, json_type_string))
					return say(why, whylen,
							   "has key \"%.100s\" holding an array with %s in it; arrays may hold strings only",
							   key, type_name(e));
			}
		}
		else if (!json_object_is_type(val, json_type_string) &&
				 !json_object_is_type(val, json_type_int))
			return say(why, whylen,
					   "has key \"%.100s\" holding %s; values may be strings, integers, arrays of strings or ISO dates",
					   key, type_name(val));
	}
	return NULL;
}

const char *
ps_tags_problem(struct json_object *v, char *why, size_t whylen)
{
	if (!json_object_is_type(v, json_type_array))
		return say(why, whylen, "must be an array of text");
	for (size_t i = 0; i < json_object_array_length(v); i++)
	{
		struct json_object *e = json_object_array_get_idx(v, i);

		if (!json_object_is_type(e, json_type_string))
			return say(why, whylen, "must not contain a NULL");
		if (json_object_get_string_len(e) == 0)
			return say(why, whylen, "must not contain an empty tag");
	}
	return NULL;
}

const char *
ps_object_problem(struct json_object *v, char *why, size_t whylen)
{
	if (!json_object_is_type(v, json_type_object))
		return say(why, whylen, "must be a JSON object");
	return NULL;
}

const char *
ps_event_properties_problem(struct json_object *v, char *why, size_t whylen)
{
	struct json_object_iterator it;
	struct json_object_iterator end;

	if (ps_object_problem(v, why, whylen) != NULL)
		return why;
	it = json_object_iter_begin(v);
	end = json_object_iter_end(v);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
	{
		struct json_object *val = json_object_iter_peek_value(&it);

		if (!json_object_is_type(val, json_type_string) &&
			!json_object_is_type(val, json_type_boolean) &&
			!json_object_is_type(val, json_type_int) &&
			!json_object_is_type(val, json_type_double))
			return say(why, whylen,
					   "has key \"%.100s\" holding %s; values may be strings, booleans, integers, floats or datetime strings",
					   json_object_iter_peek_name(&it), type_name(val));
	}
	return NULL;
}
