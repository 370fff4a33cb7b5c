/*-------------------------------------------------------------------------
 *
 * resources.c
 *		The Postscript objects as data: endpoint, records key, columns with
 *		their JSON paths, the filters and sorts the API accepts, the writes.
 *
 * Adding an object or re-pointing an endpoint is an edit here and nowhere
 * else; IMPORT FOREIGN SCHEMA, pushdown and writes all read this table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "postscript_fdw.h"

#define RAW_COLUMN \
	{"raw", "jsonb", "$", 0, 0, NULL, "the whole object as the API sent it"}

/* create-subscriber's origin: write-only, reads do not return it */
#define ORIGIN_COLUMN \
	{"origin", "text", "origin", 0, PS_COL_WRITE_ONLY, "origin", \
	 "INSERT only, reads do not return it: website, social or other (Postscript's default)", PS_VAL_ORIGIN}

#define TS_FILTERED(name, doc) \
	{name, "timestamptz", name, PS_OPS_RANGE, PS_COL_SORTABLE, NULL, doc}

#define COLS(a) a, lengthof(a)

/* ---------------------------------------------------------------- filters */

/*
 * The filters of Postscript's list endpoints: {field}__{suffix}, IN and
 * = ANY as __in once per value, LIKE '%x%' as __contains (deparse.c).
 */
const PsFilterOp ps_filter_ops[] = {
	{PS_OP_EQ, "eq"},
	{PS_OP_LT, "lt"},
	{PS_OP_LTE, "lte"},
	{PS_OP_GT, "gt"},
	{PS_OP_GTE, "gte"},
	{PS_OP_CONTAINS, "contains"},
	{PS_OP_IN, "in"},
};
const int	ps_nfilter_ops = lengthof(ps_filter_ops);

/* the query parameter suffix of one PS_OP_* */
const char *
ps_filter_suffix(uint32 op)
{
	for (int i = 0; i < ps_nfilter_ops; i++)
		if (ps_filter_ops[i].op == op)
			return ps_filter_ops[i].suffix;
	Assert(false);
	return NULL;
}

/* ---------------------------------------------------------------- writes */

/*
 * What a write changes, for sending a commit's writes concurrently: writes
 * of one spec naming the same subscriber (or subscription) by the same key
 * go in order.
 */
static const char *const subscriber_subjects[] = {"phone_number", "email", NULL};
static const char *const unsubscribe_subjects[] = {"postscript_subscriber_id", "phone_number", NULL};
static const char *const event_subjects[] = {"subscriber_id", "phone", "email", NULL};
static const char *const webhook_subjects[] = {"callback_url", NULL};
static const char *const path_subject[] = {NULL};	/* the path's id alone */

/* POST /subscribers: the documented create (opt-in by keyword) */
static const PsWriteRule create_subscriber_rules[] = {
	{"phone_number", 1, 1},
	{"keyword_id,keyword", 0, 1},
};

static const PsWriteSpec create_subscriber = {
	"POST", "/api/v2/subscribers", COLS(create_subscriber_rules),
	PS_RECONCILE_CONFLICT, PS_RESULT_OBJECT, NULL, NULL, subscriber_subjects
};

/* an opt-in is a create with a keyword; the row is the pending opt-in */
static const PsWriteRule opt_in_rules[] = {
	{"phone_number", 1, 1},
	{"keyword_id,keyword", 1, 1},
};

static const char *const opt_in_renames[] = {
	"subscriber_id", "id",
	"status", "=pending",
	NULL
};

static const PsWriteSpec create_opt_in = {
	"POST", "/api/v2/subscribers", COLS(opt_in_rules),
	PS_RECONCILE_CONFLICT, PS_RESULT_OBJECT, NULL, opt_in_renames, subscriber_subjects
};

/* tags are added and properties merged: sending twice is harmless */
static const PsWriteSpec patch_subscriber = {
	"PATCH", "/api/v2/subscribers/{id}", NULL, 0,
	PS_RECONCILE_IDEMPOTENT, PS_RESULT_OBJECT, NULL, NULL, path_subject
};

static const PsWriteRule unsubscribe_rules[] = {
	{"postscript_subscriber_id,phone_number", 1, 1},
};

static const PsWriteSpec unsubscribe = {
	"PATCH", "/api/v2/compliance/unsubscribe", COLS(unsubscribe_rules),
	PS_RECONCILE_IDEMPOTENT, PS_RESULT_NONE, NULL, NULL, unsubscribe_subjects
};

/* identifiers are optional, several may go together */
static const PsWriteRule event_rules[] = {
	{"type", 1, 1},
};

static const PsWriteSpec create_event = {
	"POST", "/api/v2/events", COLS(event_rules),
	PS_RECONCILE_NONE, PS_RESULT_ID_LIST, "event_ids", NULL, event_subjects
};

/*
 * webhook subscriptions: a create sent twice would register two, so an
 * unknown outcome is an error; a PATCH or DELETE sent twice changes nothing
 */
static const PsWriteRule webhook_rules[] = {
	{"callback_url", 1, 1},
	{"event", 1, 1},
};

static const PsWriteSpec create_webhook = {
	"POST", "/api/v2/webhooks", COLS(webhook_rules),
	PS_RECONCILE_NONE, PS_RESULT_OBJECT, NULL, NULL, webhook_subjects
};

static const PsWriteSpec patch_webhook = {
	"PATCH", "/api/v2/webhooks/{id}", NULL, 0,
	PS_RECONCILE_IDEMPOTENT, PS_RESULT_OBJECT, NULL, NULL, path_subject
};

static const PsWriteSpec delete_webhook = {
	"DELETE", "/api/v2/webhooks/{id}", NULL, 0,
	PS_RECONCILE_GONE, PS_RESULT_NONE, NULL, NULL, path_subject
};

/* ---------------------------------------------------------------- columns */

static const PsColumnDef subscriber_columns[] = {
	{"id", "text", "id", 0, PS_COL_ID | PS_COL_RESULT, NULL, "subscriber id (s_...); an unknown id is no row; in the RETURNING row of an INSERT sent at once, the pending id s_pending_..."},
	{"ps_id", "bigint", "ps_id", PS_OP_EQ, PS_COL_INT32, NULL, "the subscriber's numeric id, as in the ps_id tracking cookie; 32 bits in the API: ps_id = a larger value is no row, without a request"},
	{"phone_number", "text", "phone_number", PS_OP_EQ | PS_OP_CONTAINS | PS_OP_IN, PS_COL_SORTABLE, "phone_number", "E.164 phone number (+15555550123)", PS_VAL_PHONE},
	{"email", "text", "email", PS_OP_EQ | PS_OP_CONTAINS | PS_OP_IN, PS_COL_UPDATABLE | PS_COL_NULLABLE, "email", "may be NULL; UPDATE sends it, but Postscript sets it only where the subscriber has no email or no linked Shopify customer", PS_VAL_EMAIL},
	{"shopify_customer_id", "bigint", "shopify_customer_id", PS_OP_EQ | PS_OP_IN, PS_COL_NULLABLE, "shopify_customer_id", "the linked Shopify customer, may be NULL; sorted here, not by the API (whether it sorts these ids as numbers or as text is not documented)", PS_VAL_CUSTOMER_ID},
	{"tags", "text[]", "tags", 0, PS_COL_UPDATABLE, "tags", "UPDATE adds the tags given; no tag can be removed", PS_VAL_TAGS},
	{"properties", "jsonb", "properties", 0, PS_COL_UPDATABLE, "properties", "custom properties; UPDATE merges them key by key; none can be removed", PS_VAL_SUBSCRIBER_PROPERTIES},
	{"promotional_can_send", "boolean", "subscriptions.promotional.can_send", 0, 0, NULL, "may be sent promotional messages"},
	{"transactional_can_send", "boolean", "subscriptions.transactional.can_send", 0, 0, NULL, "may be sent transactional messages"},
	{"data", "jsonb", "data", 0, 0, NULL, "the API's data object"},
	TS_FILTERED("created_at", "when the subscriber was created"),
	TS_FILTERED("updated_at", "when the subscriber last changed"),
	{"is_pending", "boolean", "is_pending", 0, PS_COL_RESULT, NULL, "true in the RETURNING row of an INSERT sent at once: the double opt-in is not confirmed yet"},
	{"keyword_id", "text", "keyword_id", 0, PS_COL_WRITE_ONLY, "keyword_id", "INSERT only (NULL when read): the keyword whose double opt-in the new subscriber starts"},
	{"keyword", "text", "keyword", 0, PS_COL_WRITE_ONLY, "keyword", "INSERT only (NULL when read): the keyword by name, instead of keyword_id"},
	ORIGIN_COLUMN,
	RAW_COLUMN
};

static const PsColumnDef keyword_columns[] = {
	{"id", "text", "id", 0, PS_COL_ID, NULL, "keyword id (kw_...)"},
	{"keyword", "text", "keyword", 0, 0, NULL, "the keyword subscribers text in"},
	{"triggered_count", "bigint", "triggered_count", 0, 0, NULL, "how often it was texted in"},
	{"created_at", "timestamptz", "created_at", 0, 0, NULL, "when it was created (the API sends UTC without a zone)"},
	{"updated_at", "timestamptz", "updated_at", 0, 0, NULL, "when it last changed (UTC without a zone)"},
	RAW_COLUMN
};

static const PsColumnDef campaign_columns[] = {
	{"id", "text", "id", 0, PS_COL_ID, NULL, "campaign id (cmp_...)"},
	{"name", "text", "name", 0, 0, NULL, "campaign name"},
	{"status", "text", "status", PS_OP_EQ | PS_OP_IN, 0, NULL, "draft, scheduled, sending, sent, paused or cancelled"},
	{"body", "text", "body", 0, 0, NULL, "message text"},
	{"media_url", "text", "media_url", 0, 0, NULL, "MMS media, may be NULL"},
	{"segment_id", "text", "segment_id", 0, 0, NULL, "audience segment"},
	{"scheduled_at", "timestamptz", "scheduled_at", 0, 0, NULL, "when it is scheduled to send"},
	{"sent_at", "timestamptz", "sent_at", PS_OPS_RANGE, PS_COL_SORTABLE | PS_COL_NULLABLE, NULL, "when it was sent; NULL until sent"},
	TS_FILTERED("created_at", "when it was created"),
	{"updated_at", "timestamptz", "updated_at", PS_OPS_RANGE, 0, NULL, "when it last changed"},
	{"recipients", "bigint", "stats.recipients", 0, 0, NULL, "stats: audience size"},
	{"sent", "bigint", "stats.sent", 0, 0, NULL, "stats: messages sent"},
	{"delivered", "bigint", "stats.delivered", 0, 0, NULL, "stats: messages delivered"},
	{"clicks", "bigint", "stats.clicks", 0, 0, NULL, "stats: link clicks"},
	{"conversions", "bigint", "stats.conversions", 0, 0, NULL, "stats: orders attributed"},
	{"revenue", "numeric", "stats.revenue", 0, 0, NULL, "stats: attributed revenue (a decimal string in the API, exact in numeric)"},
	{"opt_outs", "bigint", "stats.opt_outs", 0, 0, NULL, "stats: opt-outs caused"},
	{"credits_used", "bigint", "stats.credits_used", 0, 0, NULL, "stats: SMS credits spent"},
	RAW_COLUMN
};

static const PsColumnDef message_columns[] = {
	{"id", "text", "id", 0, PS_COL_ID, NULL, "message id (msg_...)"},
	{"subscriber_id", "text", "subscriber_id", PS_OP_EQ | PS_OP_IN, 0, NULL, "the subscriber"},
	{"phone", "text", "phone", PS_OP_EQ, 0, NULL, "the subscriber's phone number"},
	{"direction", "text", "direction", PS_OP_EQ, 0, NULL, "outbound or inbound"},
	{"category", "text", "category", PS_OP_EQ, 0, NULL, "promotional, transactional or conversational"},
	{"body", "text", "body", 0, 0, NULL, "message text"},
	{"media_url", "text", "media_url", 0, 0, NULL, "MMS media, may be NULL"},
	{"campaign_id", "text", "campaign_id", PS_OP_EQ, PS_COL_NULLABLE, NULL, "the campaign; NULL outside campaigns"},
	{"status", "text", "status", 0, 0, NULL, "delivery status"},
	{"credits_used", "bigint", "credits_used", 0, 0, NULL, "SMS credits spent"},
	TS_FILTERED("created_at", "when it was sent or received"),
	RAW_COLUMN
};

static const PsColumnDef opt_in_columns[] = {
	{"id", "text", "id", 0, PS_COL_RESULT, NULL, "opt-in id (oi_...); in the RETURNING row of an INSERT sent at once, the pending subscriber's id"},
	{"subscriber_id", "text", "subscriber_id", PS_OP_EQ, PS_COL_RESULT, NULL, "the subscriber; after an INSERT sent at once, the pending subscriber's id"},
	{"phone_number", "text", "phone_number", PS_OP_EQ, 0, "phone_number", "E.164 phone number", PS_VAL_PHONE},
	{"keyword_id", "text", "keyword_id", 0, 0, "keyword_id", "the keyword texted in; an INSERT names it by keyword_id or keyword"},
	{"source", "text", "source", 0, 0, NULL, "how it came: keyword, api, ..."},
	{"status", "text", "status", 0, PS_COL_RESULT, NULL, "pending or confirmed; pending after an INSERT"},
	TS_FILTERED("created_at", "when the opt-in started"),
	{"confirmed_at", "timestamptz", "confirmed_at", 0, 0, NULL, "when the double opt-in was confirmed; NULL while pending"},
	{"keyword", "text", "keyword", 0, PS_COL_WRITE_ONLY, "keyword", "INSERT only: the keyword by name"},
	{"email", "text", "email", 0, PS_COL_WRITE_ONLY, "email", "INSERT only: the new subscriber's email", PS_VAL_EMAIL},
	ORIGIN_COLUMN,
	RAW_COLUMN
};

static const PsColumnDef opt_out_columns[] = {
	{"id", "text", "id", 0, 0, NULL, "opt-out id (oo_...)"},
	{"subscriber_id", "text", "subscriber_id", PS_OP_EQ, 0, "postscript_subscriber_id", "the subscriber; an INSERT names it by subscriber_id or phone_number"},
	{"phone_number", "text", "phone_number", PS_OP_EQ, 0, "phone_number", "E.164 phone number", PS_VAL_PHONE},
	{"source", "text", "source", 0, 0, NULL, "how it came: reply_stop, api, ..."},
	TS_FILTERED("created_at", "when the subscriber opted out"),
	RAW_COLUMN
};

static const PsColumnDef event_columns[] = {
	{"id", "text", "id", 0, PS_COL_RESULT, NULL, "RETURNING only, sent at once: the event id Postscript assigned"},
	{"type", "text", "type", 0, 0, "type", "the event's name, e.g. order_placed", PS_VAL_EVENT_TYPE},
	{"subscriber_id", "text", "subscriber_id", 0, 0, "subscriber_id", "the subscriber it concerns; subscriber_id, phone and email are all optional, and several may be given"},
	{"phone", "text", "phone", 0, 0, "phone", "the subscriber's phone number", PS_VAL_PHONE},
	{"email", "text", "email", 0, 0, "email", "the subscriber's email", PS_VAL_EMAIL},
	{"occurred_at", "timestamptz", "occurred_at", 0, 0, "occurred_at", "when it happened; left out, when Postscript receives it", PS_VAL_EVENT_TIME},
	{"properties", "jsonb", "properties", 0, 0, "properties", "the event's properties, any number of keys", PS_VAL_EVENT_PROPERTIES},
	{"external_id", "text", "external_id", 0, 0, "external_id", "your id of the event"}
};

static const PsColumnDef shop_columns[] = {
	{"resource_id", "text", "resource_id", 0, 0, NULL, "the shop's id"},
	{"resource_name", "text", "resource_name", 0, 0, NULL, "the shop's name"},
	{"resource_type", "text", "resource_type", 0, 0, NULL, "always shop"},
	RAW_COLUMN
};

static const PsColumnDef webhook_columns[] = {
	{"id", "text", "id", 0, PS_COL_ID | PS_COL_RESULT, NULL, "webhook subscription id (a UUID)"},
	{"callback_url", "text", "callback_url", 0, PS_COL_UPDATABLE, "callback_url", "where Postscript POSTs the deliveries (HTTPS)", PS_VAL_TEXT},
	{"event", "text", "event", 0, 0, "event", "shop.subscriber.opt_in, shop.subscriber.opt_out, shop.incoming_message, shop.shop.email_collected or shop.test; an UPDATE cannot change it", PS_VAL_TEXT},
	{"headers", "jsonb", "headers", 0, PS_COL_UPDATABLE, "headers", "extra headers Postscript sends with each delivery", PS_VAL_OBJECT},
	{"created_at", "timestamptz", "created_at", 0, PS_COL_RESULT, NULL, "when the subscription was created"},
	{"updated_at", "timestamptz", "updated_at", 0, PS_COL_RESULT, NULL, "when it was last changed"},
	RAW_COLUMN
};

const PsResource ps_resources[] = {
	{
		"subscribers", "/api/v2/subscribers", "subscribers", true, true, true,
		&create_subscriber, &patch_subscriber, NULL,
		"Postscript has no delete: INSERT INTO opt_outs to unsubscribe, or use the compliance/redact endpoint outside SQL.",
		COLS(subscriber_columns),
		"The shop's subscribers; pending ones (double opt-in not confirmed) appear in opt_ins instead."
	},
	{
		"keywords", "/api/v2/keywords", "keywords", false, true, true,
		NULL, NULL, NULL, NULL,
		COLS(keyword_columns),
		"The shop's keywords: what people text in to subscribe.",
		true
	},
	{
		"campaigns", "/api/v2/campaigns", "campaigns", true, true, false,
		NULL, NULL, NULL, NULL,
		COLS(campaign_columns),
		"SMS campaigns, with their stats as columns."
	},
	{
		"messages", "/api/v2/messages", "messages", true, true, false,
		NULL, NULL, NULL, NULL,
		COLS(message_columns),
		"Messages sent and received."
	},
	{
		"opt_ins", "/api/v2/opt_ins", "opt_ins", true, true, false,
		&create_opt_in, NULL, NULL,
		"The opt-in log cannot be edited.",
		COLS(opt_in_columns),
		"The opt-in log, pending and confirmed; an INSERT starts a double opt-in."
	},
	{
		"opt_outs", "/api/v2/opt_outs", "opt_outs", true, true, false,
		&unsubscribe, NULL, NULL,
		"An opt-out cannot be taken back through the API.",
		COLS(opt_out_columns),
		"The opt-out log; an INSERT unsubscribes."
	},
	{
		"events", "/api/v2/events", NULL, false, false, true,
		&create_event, NULL, NULL,
		"Events cannot be deleted.",
		COLS(event_columns),
		"Custom events for Postscript's automations; write-only."
	},
	{
		"shop", "/api/v2/me", NULL, false, true, true,
		NULL, NULL, NULL, NULL,
		COLS(shop_columns),
		"The shop the credentials belong to, one row: SELECT * FROM shop checks them."
	},
	{
		"webhooks", "/api/v2/webhooks", "webhook_subscriptions", false, true, true,
		&create_webhook, &patch_webhook, &delete_webhook, NULL,
		COLS(webhook_columns),
		"Webhook subscriptions: which events Postscript POSTs to which URL."
	},
};

const int	ps_nresources = lengthof(ps_resources);

const PsResource *
ps_resource_by_name(const char *name)
{
	for (int i = 0; i < ps_nresources; i++)
		if (strcmp(ps_resources[i].name, name) == 0)
			return &ps_resources[i];
	return NULL;
}

const PsColumnDef *
ps_column_by_name(const PsResource *res, const char *name)
{
	for (int i = 0; i < res->ncolumns; i++)
		if (strcmp(res->columns[i].name, name) == 0)
			return &res->columns[i];
	return NULL;
}

const PsColumnDef *
ps_column_by_field(const PsResource *res, const char *field)
{
	for (int i = 0; i < res->ncolumns; i++)
		if (strcmp(res->columns[i].field, field) == 0)
			return &res->columns[i];
	return NULL;
}

/* "subscribers, keywords, ..." for error hints */
char *
ps_resource_names(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < ps_nresources; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", ps_resources[i].name);
	return buf.data;
}

/*
 * An id that names one object: "", "." and ".." would make {path}/{id}
 * name another endpoint (a client normalizes dot segments away).  Reads
 * and writes both refuse them.
 */
bool
ps_valid_object_id(const char *id)
{
	return id[0] != '\0' && strcmp(id, ".") != 0 && strcmp(id, "..") != 0;
}

/* path with "{id}" replaced by the percent-encoded id */
char *
ps_object_path(const char *path, const char *id)
{
	const char *brace = strstr(path, "{id}");

	Assert(brace != NULL);
	Assert(ps_valid_object_id(id));
	return psprintf("%.*s%s%s", (int) (brace - path), path,
					ps_url_encode(id), brace + 4);
}
