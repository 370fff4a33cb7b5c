/*-------------------------------------------------------------------------
 *
 * phone.c
 *		Phone numbers as people write them, to E.164 ("+" and at most 15
 *		digits), before any of them is sent to Postscript.
 *
 * Plain C with no PostgreSQL dependency: the normalizer can be compiled and
 * fuzzed on its own (cc -c src/phone.c).  It checks the shape of a number,
 * not whether it is in service: the country calling code must be one the
 * ITU assigned, the national significant number must have a length the
 * country's numbering plan allows (for the countries in the table below;
 * any length that keeps the whole number within 7 to 15 digits elsewhere),
 * and North American numbers must follow the NANP rules.
 *
 *-------------------------------------------------------------------------
 */
#include "phone.h"

#include <ctype.h>
#include <string.h>

/* national numbering plans this file knows */
typedef struct PhoneCountry
{
	char		iso[3];			/* ISO 3166 alpha-2 */
	const char *cc;				/* country calling code */
	const char *trunk;			/* national (trunk) prefix, "" if none */
	unsigned char min_nsn;		/* national significant number length */
	unsigned char max_nsn;
	unsigned char nanp;			/* North American Numbering Plan rules */
} PhoneCountry;

static const PhoneCountry countries[] = {
	/* North American Numbering Plan: NXX-NXX-XXXX */
	{"US", "1", "1", 10, 10, 1},
	{"CA", "1", "1", 10, 10, 1},
	{"PR", "1", "1", 10, 10, 1},
	{"VI", "1", "1", 10, 10, 1},
	{"GU", "1", "1", 10, 10, 1},
	{"AS", "1", "1", 10, 10, 1},
	{"MP", "1", "1", 10, 10, 1},
	{"BS", "1", "1", 10, 10, 1},
	{"BB", "1", "1", 10, 10, 1},
	{"BM", "1", "1", 10, 10, 1},
	{"DO", "1", "1", 10, 10, 1},
	{"JM", "1", "1", 10, 10, 1},
	{"TT", "1", "1", 10, 10, 1},
	/* Europe */
	{"GB", "44", "0", 9, 10, 0},
	{"IE", "353", "0", 7, 9, 0},
	{"DE", "49", "0", 6, 13, 0},
	{"AT", "43", "0", 4, 13, 0},
	{"CH", "41", "0", 9, 9, 0},
	{"FR", "33", "0", 9, 9, 0},
	{"BE", "32", "0", 8, 9, 0},
	{"NL", "31", "0", 9, 9, 0},
	{"LU", "352", "", 4, 11, 0},
	{"IT", "39", "", 6, 11, 0},
	{"ES", "34", "", 9, 9, 0},
	{"PT", "351", "", 9, 9, 0},
	{"DK", "45", "", 8, 8, 0},
	{"NO", "47", "", 8, 8, 0},
	{"SE", "46", "0", 7, 9, 0},
	{"FI", "358", "0", 5, 12, 0},
	{"IS", "354", "", 7, 7, 0},
	{"PL", "48", "", 9, 9, 0},
	{"CZ", "420", "", 9, 9, 0},
	{"SK", "421", "0", 9, 9, 0},
	{"HU", "36", "06", 8, 9, 0},
	{"RO", "40", "0", 9, 9, 0},
	{"GR", "30", "", 10, 10, 0},
	{"TR", "90", "0", 10, 10, 0},
	{"RU", "7", "8", 10, 10, 0},
	{"KZ", "7", "8", 10, 10, 0},
	/* Middle East, Africa */
	{"IL", "972", "0", 8, 9, 0},
	{"AE", "971", "0", 8, 9, 0},
	{"ZA", "27", "0", 9, 9, 0},
	/* Asia, Pacific */
	{"IN", "91", "0", 10, 10, 0},
	{"CN", "86", "0", 7, 11, 0},
	{"JP", "81", "0", 9, 10, 0},
	{"KR", "82", "0", 8, 10, 0},
	{"SG", "65", "", 8, 8, 0},
	{"HK", "852", "", 8, 8, 0},
	{"PH", "63", "0", 8, 10, 0},
	{"AU", "61", "0", 9, 9, 0},
	{"NZ", "64", "0", 8, 10, 0},
	/* Latin America */
	{"MX", "52", "", 10, 10, 0},
	{"BR", "55", "0", 10, 11, 0},
	{"AR", "54", "0", 10, 11, 0},
	{"CL", "56", "", 9, 9, 0},
	{"CO", "57", "", 8, 10, 0},
};

/*
 * Every country calling code the ITU assigned (E.164 annex); the set is
 * prefix-free, so a number's code is the one of its first 1, 2 or 3 digits
 * that is here.
 */
static const char *const calling_codes[] = {
	"1", "7",
	"20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43",
	"44", "45", "46", "47", "48", "49", "51", "52", "53", "54", "55", "56",
	"57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84",
	"86", "90", "91", "92", "93", "94", "95", "98",
	"211", "212", "213", "216", "218", "220", "221", "222", "223", "224",
	"225", "226", "227", "228", "229", "230", "231", "232", "233", "234",
	"235", "236", "237", "238", "239", "240", "241", "242", "243", "244",
	"245", "246", "247", "248", "249", "250", "251", "252", "253", "254",
	"255", "256", "257", "258", "260", "261", "262", "263", "264", "265",
	"266", "267", "268", "269", "290", "291", "297", "298", "299",
	"350", "351", "352", "353", "354", "355", "356", "357", "358", "359",
	"370", "371", "372", "373", "374", "375", "376", "377", "378", "379",
	"380", "381", "382", "383", "385", "386", "387", "389",
	"420", "421", "423",
	"500", "501", "502", "503", "504", "505", "506", "507", "508", "509",
	"590", "591", "592", "593", "594", "595", "596", "597", "598", "599",
	"670", "672", "673", "674", "675", "676", "677", "678", "679", "680",
	"681", "682", "683", "685", "686", "687", "688", "689", "690", "691",
	"692",
	"800", "808", "850", "852", "853", "855", "856", "870", "878", "880",
	"881", "882", "883", "886", "888",
	"960", "961", "962", "963", "964", "965", "966", "967", "968", "970",
	"971", "972", "973", "974", "975", "976", "977", "979", "992", "993",
	"994", "995", "996", "998",
};

/*
 * Every ISO 3166-1 alpha-2 code assigned to a country or territory (249, as
 * tzdata's iso3166.tab lists them), each followed by a space or the end.
 */
static const char iso_codes[] =
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH "
	"BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL "
	"CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET "
	"FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU "
	"GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE "
	"KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC "
	"MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC "
	"NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT "
	"PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR "
	"SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA "
	"UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

#define NCOUNTRIES (sizeof(countries) / sizeof(countries[0]))
#define NCODES (sizeof(calling_codes) / sizeof(calling_codes[0]))

/* E.164: at most 15 digits in all; below 7 nothing is a subscriber number */
#define E164_MAX_DIGITS 15
#define E164_MIN_DIGITS 7

bool
ps_country_code_assigned(const char *iso)
{
	if (iso == NULL || iso[0] == '\0' || iso[1] == '\0' || iso[2] != '\0')
		return false;
	for (const char *c = iso_codes;; c += 3)
	{
		if (c[0] == toupper((unsigned char) iso[0]) &&
			c[1] == toupper((unsigned char) iso[1]))
			return true;
		if (c[2] == '\0')
			return false;
	}
}

static const PhoneCountry *
country_by_iso(const char *iso)
{
	char		up[3];

	if (iso == NULL || iso[0] == '\0' || iso[1] == '\0' || iso[2] != '\0')
		return NULL;
	for (int i = 0; i < 2; i++)
		up[i] = (iso[i] >= 'a' && iso[i] <= 'z') ? (char) (iso[i] - 'a' + 'A') : iso[i];
	up[2] = '\0';
	for (size_t i = 0; i < NCOUNTRIES; i++)
		if (strcmp(countries[i].iso, up) == 0)
			return &countries[i];
	return NULL;
}

static const PhoneCountry *
country_by_code(const char *cc, size_t len)
{
	for (size_t i = 0; i < NCOUNTRIES; i++)
		if (strlen(countries[i].cc) == len && memcmp(countries[i].cc, cc, len) == 0)
			return &countries[i];
	return NULL;
}

/* length of the calling code that digits start with, 0 if none */
static size_t
calling_code_len(const char *digits, size_t n)
{
	for (size_t len = 1; len <= 3 && len <= n; len++)
		for (size_t i = 0; i < NCODES; i++)
			if (strlen(calling_codes[i]) == len &&
				memcmp(calling_codes[i], digits, len) == 0)
				return len;
	return 0;
}

/* NULL if the national significant number fits the country's plan */
static const char *
check_national(const PhoneCountry *c, const char *nsn, size_t len)
{
	if (c->trunk[0] == '0' && len > 0 && nsn[0] == '0')
		return "has a national number starting with 0 after the trunk prefix";
	if (len < c->min_nsn)
		return "has too few digits for a number of its country";
	if (len > c->max_nsn)
		return "has too many digits for a number of its country";
	if (c->nanp)
	{
		if (nsn[0] == '0' || nsn[0] == '1')
			return "has an area code starting with 0 or 1, which North American numbers cannot have";
		if (nsn[1] == '1' && nsn[2] == '1')
			return "has a service code such as 911 where the area code belongs";
		if (nsn[3] == '0' || nsn[3] == '1')
			return "has an exchange code (the 3 digits after the area code) starting with 0 or 1, which North American numbers cannot have";
	}
	return NULL;
}

static int
fail(const char *why, const char **reason)
{
	if (reason)
		*reason = why;
	return -1;
}

int
ps_phone_normalize(const char *in, const char *default_country,
				   char *out, size_t outlen, const char **reason)
{
	char		digits[E164_MAX_DIGITS + 5];
	size_t		nd = 0;
	int			plus = 0;
	const char *d;
	size_t		n;
	const PhoneCountry *home = country_by_iso(default_country);
	const PhoneCountry *c;
	const char *cc;
	size_t		cclen;
	const char *why;

	if (out && outlen > 0)
		out[0] = '\0';
	if (out == NULL || outlen < PS_PHONE_MAXLEN)
		return fail("cannot be normalized into so small a buffer", reason);
	if (in == NULL)
		return fail("is empty", reason);

	for (const unsigned char *p = (const unsigned char *) in; *p; p++)
	{
		unsigned char ch = *p;

		if (ch >= '0' && ch <= '9')
		{
			/* keep one digit more than fits: "too long" is decided below */
			if (nd >= sizeof(digits) - 1)
				return fail("has more than 15 digits, the most E.164 allows", reason);
			digits[nd++] = (char) ch;
		}
		else if (ch == '+')
		{
			if (plus || nd > 0)
				return fail("has a + that is not at its start", reason);
			plus = 1;
		}
		else if (ch == ' ' || ch == '\t' || ch == '.' || ch == '-' ||
				 ch == '(' || ch == ')' || ch == '/')
			continue;
		else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
			return fail("contains letters", reason);
		else
			return fail("contains a character that is neither a digit nor one of the separators space . - / ( )", reason);
	}
	digits[nd] = '\0';
	if (nd == 0)
		return fail("has no digits", reason);

	d = digits;
	n = nd;
	if (!plus && n >= 2 && d[0] == '0' && d[1] == '0')
	{
		plus = 1;				/* the international prefix 00 */
		d += 2;
		n -= 2;
	}
	else if (!plus && home && home->nanp && n >= 3 && memcmp(d, "011", 3) == 0)
	{
		plus = 1;				/* the North American international prefix */
		d += 3;
		n -= 3;
	}

	if (plus)
	{
		cclen = calling_code_len(d, n);
		if (cclen == 0)
			return fail("does not start with a country calling code", reason);
		cc = d;
		d += cclen;
		n -= cclen;
		c = country_by_code(cc, cclen);
		/* "+44 (0)20 ...": the trunk prefix written after the code */
		if (c && c->trunk[0] == '0' && c->trunk[1] == '\0' && n > 0 && d[0] == '0')
		{
			d++;
			n--;
		}
	}
	else
	{
		size_t		tlen;

		c = home;
		if (c == NULL)
			return fail("is not in international format (+ and the country calling code), and default_country names a country whose national numbers are not known", reason);
		cc = c->cc;
		cclen = strlen(cc);
		tlen = strlen(c->trunk);
		if (tlen > 0 && n > tlen && memcmp(d, c->trunk, tlen) == 0 &&
			(c->trunk[0] == '0' || n == c->max_nsn + tlen))
		{
			d += tlen;
			n -= tlen;
		}
	}

	if (cclen + n > E164_MAX_DIGITS)
		return fail("has more than 15 digits, the most E.164 allows", reason);
	if (c && (why = check_national(c, d, n)) != NULL)
		return fail(why, reason);
	if (n == 0 || cclen + n < E164_MIN_DIGITS)
		return fail("has too few digits for a number of its country", reason);

	out[0] = '+';
	memcpy(out + 1, cc, cclen);
	memcpy(out + 1 + cclen, d, n);
	out[1 + cclen + n] = '\0';
	return 0;
}
