/*
 * libFuzzer harness for the written-value checks (src/validate.c).
 *
 * Input: byte 0 picks the check, the rest is the value (a string, or JSON
 * for properties, tags and objects).  Checks, besides what AddressSanitizer
 * and UBSan catch (the input and the reason buffer are allocated at their
 * exact sizes):
 *   - a refusal returns the reason buffer, NUL-terminated within its size;
 *   - an accepted email has exactly one @ and no space; an accepted event
 *     type or customer id has only the allowed characters; an accepted
 *     origin is one of the three;
 *   - accepted properties are an object of at most 50 non-empty keys whose
 *     values are strings, integers or arrays of strings;
 *   - accepted event properties are an object whose values are strings,
 *     booleans or numbers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "validate.h"

#define WHYLEN 96

static void
fail(const char *what, const char *in)
{
	fprintf(stderr, "validate property violated: %s\n  input \"%s\"\n", what, in);
	abort();
}

static void
check_reason(const char *r, const char *why, const char *in)
{
	if (r != NULL && (r != why || memchr(why, '\0', WHYLEN) == NULL || why[0] == '\0'))
		fail("a refusal gives its reason in the buffer", in);
}

static void
check_properties(struct json_object *v, const char *in)
{
	struct json_object_iterator it = json_object_iter_begin(v);
	struct json_object_iterator end = json_object_iter_end(v);

	if (!json_object_is_type(v, json_type_object) ||
		json_object_object_length(v) > PS_MAX_PROPERTIES)
		fail("accepted properties are an object of at most 50 keys", in);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
	{
		struct json_object *val = json_object_iter_peek_value(&it);

		if (json_object_iter_peek_name(&it)[0] == '\0')
			fail("accepted properties have no empty key", in);
		if (json_object_is_type(val, json_type_array))
		{
			for (size_t i = 0; i < json_object_array_length(val); i++)
				if (!json_object_is_type(json_object_array_get_idx(val, i), json_type_string))
					fail("accepted property arrays hold strings only", in);
		}
		else if (!json_object_is_type(val, json_type_string) &&
				 !json_object_is_type(val, json_type_int))
			fail("accepted property values are strings, integers or string arrays", in);
	}
}

/* what ps_event_properties_problem() let through */
static void
check_event_properties(struct json_object *v, const char *in)
{
	if (!json_object_is_type(v, json_type_object))
		fail("accepted event properties are an object", in);
	json_object_object_foreach(v, key, val)
	{
		(void) key;
		if (val == NULL || json_object_is_type(val, json_type_object) ||
			json_object_is_type(val, json_type_array))
			fail("accepted event property values are strings, booleans or numbers", in);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *in;
	char	   *why;
	const char *r;

	if (size < 1)
		return 0;
	in = malloc(size);
	memcpy(in, data + 1, size - 1);
	in[size - 1] = '\0';
	why = malloc(WHYLEN);

	switch (data[0] % 8)
	{
		case 0:
			r = ps_email_problem(in, why, WHYLEN);
			check_reason(r, why, in);
			if (r == NULL && (strchr(in, '@') == NULL || strchr(in, '@') != strrchr(in, '@') ||
							  strchr(in, ' ') != NULL))
				fail("an accepted email has one @ and no space", in);
			break;
		case 1:
			r = ps_event_type_problem(in, why, WHYLEN);
			check_reason(r, why, in);
			if (r == NULL && (in[0] == '\0' ||
							  strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(in)))
				fail("an accepted event type is letters, digits and underscores", in);
			break;
		case 2:
			r = ps_origin_problem(in, why, WHYLEN);
			check_reason(r, why, in);
			if (r == NULL && strcmp(in, "website") && strcmp(in, "social") && strcmp(in, "other"))
				fail("an accepted origin is website, social or other", in);
			break;
		case 3:
			r = ps_customer_id_problem(in, why, WHYLEN);
			check_reason(r, why, in);
			if (r == NULL && (in[0] == '\0' || strspn(in, "0123456789") != strlen(in)))
				fail("an accepted customer id is digits", in);
			break;
		default:
			{
				struct json_object *v = json_tokener_parse(in);

				if (data[0] % 8 == 4)
				{
					r = ps_properties_problem(v, why, WHYLEN);
					check_reason(r, why, in);
					if (r == NULL)
						check_properties(v, in);
				}
				else if (data[0] % 8 == 5)
				{
					r = ps_tags_problem(v, why, WHYLEN);
					check_reason(r, why, in);
					if (r == NULL && !json_object_is_type(v, json_type_array))
						fail("accepted tags are an array", in);
				}
				else if (data[0] % 8 == 6)
				{
					r = ps_event_properties_problem(v, why, WHYLEN);
					check_reason(r, why, in);
					if (r == NULL)
						check_event_properties(v, in);
				}
				else
				{
					r = ps_object_problem(v, why, WHYLEN);
					check_reason(r, why, in);
					if (r == NULL && !json_object_is_type(v, json_type_object))
						fail("an accepted object is an object", in);
				}
				json_object_put(v);
			}
			break;
	}
	free(why);
	free(in);
	return 0;
}
