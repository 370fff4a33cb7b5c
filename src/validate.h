/*-------------------------------------------------------------------------
 *
 * validate.h
 *		Checks of the values a write sends, in plain C (no PostgreSQL
 *		dependency, so they can be built and fuzzed on their own, like
 *		phone.c).
 *
 * Each returns NULL when the value is acceptable, else writes a sentence
 * saying why not into why (at most whylen bytes, NUL-terminated; the
 * sentence completes "The value ...") and returns why.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PS_VALIDATE_H
#define PS_VALIDATE_H

#include <stddef.h>

struct json_object;

/* an email address as Postscript takes it */
extern const char *ps_email_problem(const char *s, char *why, size_t whylen);

/* a custom event type: one or more letters, digits and underscores */
extern const char *ps_event_type_problem(const char *s, char *why, size_t whylen);

/* create-subscriber's origin: website, social or other */
extern const char *ps_origin_problem(const char *s, char *why, size_t whylen);

/* a Shopify customer id: a positive integer of at most 18 digits */
extern const char *ps_customer_id_problem(const char *s, char *why, size_t whylen);

/*
 * A subscriber's properties: a JSON object of at most 50 keys, each
 * non-empty, whose values are strings, integers, arrays of strings or ISO
 * dates (strings too); a boolean, a fraction, null, an object or an array
 * holding anything but strings is refused, naming the key.
 */
#define PS_MAX_PROPERTIES 50
extern const char *ps_properties_problem(struct json_object *v, char *why, size_t whylen);

/* a tag list: an array of non-empty strings */
extern const char *ps_tags_problem(struct json_object *v, char *why, size_t whylen);

/* any JSON object (a webhook subscription's headers) */
extern const char *ps_object_problem(struct json_object *v, char *why, size_t whylen);

/*
 * An event's properties: an object whose values are strings, booleans,
 * integers or floats (a datetime is a string), the types the reference says
 * Postscript accepts; no key limit.  null, an object or an array is refused,
 * naming the key.
 */
extern const char *ps_event_properties_problem(struct json_object *v, char *why, size_t whylen);

#endif							/* PS_VALIDATE_H */
