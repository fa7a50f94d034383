//! Languages of the web UI: every visible text comes from a translation file
//! (`locales/en.toml`, `locales/ja.toml`, flat `key = "text"`), and dates and numbers are
//! written the way the user's language writes them.
//!
//! Invariant (tested): both files have exactly the same keys and no empty text, so a page
//! never falls back to another language or shows a key.

use axum::http::{HeaderMap, header};
use cellops_domain::Timestamp;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Cookie holding the chosen language (`en` or `ja`).
pub const LANG_COOKIE: &str = "cellops_lang";
/// Cookie holding the chosen time zone (`UTC` or `Asia/Tokyo`).
pub const TZ_COOKIE: &str = "cellops_tz";

/// A time zone dates and times are shown in. Only zones without daylight saving time, so a
/// fixed offset is exact (Japan has had none since 1951).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Utc,
    Tokyo,
}

impl Zone {
    pub const ALL: [Zone; 2] = [Zone::Tokyo, Zone::Utc];

    /// The IANA name.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Utc => "UTC",
            Zone::Tokyo => "Asia/Tokyo",
        }
    }

    pub fn parse(text: &str) -> Option<Zone> {
        Zone::ALL.into_iter().find(|z| z.name() == text)
    }

    /// What a time in this zone is labelled with.
    pub fn abbreviation(self) -> &'static str {
        match self {
            Zone::Utc => "UTC",
            Zone::Tokyo => "JST",
        }
    }

    fn offset_us(self) -> i64 {
        match self {
            Zone::Utc => 0,
            Zone::Tokyo => 9 * 3_600_000_000,
        }
    }

    /// A form's wall-clock `YYYY-MM-DD` (start of that day) or `YYYY-MM-DDTHH:MM` in this
    /// zone as an instant; `None` when the text is neither.
    pub fn parse_local(self, text: &str) -> Option<Timestamp> {
        let text = text.trim();
        let full = match text.len() {
            10 => format!("{text}T00:00:00Z"),
            16 => format!("{text}:00Z"),
            19 => format!("{text}Z"),
            _ => return None,
        };
        let at = Timestamp::parse(&full).ok()?;
        Timestamp::from_unix_us(at.unix_us() - self.offset_us()).ok()
    }

    /// The instant as this zone's `YYYY-MM-DDTHH:MM` (a `datetime-local` input's value; its
    /// first ten characters are a `date` input's).
    pub fn local_input(self, at: Timestamp) -> String {
        at.plus_us(self.offset_us()).to_string()[..16].to_string()
    }

    /// The zone cookie if set, else the usual zone of the language: Japan time for
    /// Japanese, UTC for English.
    pub fn from_headers(headers: &HeaderMap, lang: Lang) -> Zone {
        cookie(headers, TZ_COOKIE)
            .and_then(|z| Zone::parse(&z.replace("%2F", "/")))
            .unwrap_or(match lang {
                Lang::Ja => Zone::Tokyo,
                Lang::En => Zone::Utc,
            })
    }
}

/// A language of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

/// One translation file: key → text.
pub type Texts = BTreeMap<String, String>;

fn load(name: &str, source: &str) -> Texts {
    // Cannot fail at run time: both files are compiled in and a unit test parses them.
    toml::from_str(source).unwrap_or_else(|e| panic!("translation file {name} is broken: {e}"))
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Ja, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    /// The language cookie if set, else the first of `Accept-Language` we speak, else English.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        if let Some(lang) = cookie(headers, LANG_COOKIE).and_then(|v| Lang::parse(&v)) {
            return lang;
        }
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        accept
            .split(',')
            .map(|part| part.split(';').next().unwrap_or("").trim())
            .find_map(|tag| Lang::parse(tag.split('-').next().unwrap_or("")))
            .unwrap_or(Lang::En)
    }

    /// Every text of this language.
    pub fn texts(self) -> &'static Texts {
        static EN: OnceLock<Texts> = OnceLock::new();
        static JA: OnceLock<Texts> = OnceLock::new();
        match self {
            Lang::En => EN.get_or_init(|| load("en.toml", include_str!("locales/en.toml"))),
            Lang::Ja => JA.get_or_init(|| load("ja.toml", include_str!("locales/ja.toml"))),
        }
    }

    /// The text for `key`. A missing key is a programming error caught by the tests; in
    /// production the key itself is shown rather than failing the page.
    pub fn t(self, key: &str) -> String {
        match self.texts().get(key) {
            Some(t) => t.clone(),
            None => {
                debug_assert!(false, "translation key {key:?} is missing");
                key.to_string()
            }
        }
    }

    /// A date and time as this language writes it, in UTC: `24 Nov 2025 16:00 UTC` /
    /// `2025年11月24日 16:00 UTC`.
    pub fn format_time(self, at: Timestamp) -> String {
        self.format_time_in(Zone::Utc, at)
    }

    /// A date and time as this language writes it in `zone`, the zone named so nobody
    /// mistakes it: `25 Nov 2025 01:00 JST` / `2025年11月25日 01:00 JST`.
    pub fn format_time_in(self, zone: Zone, at: Timestamp) -> String {
        // The instant moved by the zone's offset, written as its wall-clock time there.
        let text = at.plus_us(zone.offset_us()).to_string(); // `YYYY-MM-DDTHH:MM:SS.ffffffZ`
        let tz = zone.abbreviation();
        let (year, month, day, hm) = (&text[0..4], &text[5..7], &text[8..10], &text[11..16]);
        match self {
            Lang::Ja => format!(
                "{year}年{}月{}日 {hm} {tz}",
                month.trim_start_matches('0'),
                day.trim_start_matches('0')
            ),
            Lang::En => {
                const MONTHS: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ];
                let m: usize = month.parse().unwrap_or(1);
                format!(
                    "{} {} {year} {hm} {tz}",
                    day.trim_start_matches('0'),
                    MONTHS[(m.clamp(1, 12)) - 1]
                )
            }
        }
    }

    /// A canonical timestamp text from JSON formatted with [`Lang::format_time`]; other text
    /// is returned unchanged.
    pub fn format_time_text(self, text: &str) -> String {
        self.format_time_text_in(Zone::Utc, text)
    }

    /// [`Lang::format_time_text`] in `zone`.
    pub fn format_time_text_in(self, zone: Zone, text: &str) -> String {
        match Timestamp::parse(text) {
            Ok(at) => self.format_time_in(zone, at),
            Err(_) => text.to_string(),
        }
    }

    /// A count with thousands separators (both languages group by three with commas).
    pub fn format_count(self, n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (n, v) = c.trim().split_once('=')?;
            (n == name).then(|| v.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_keys_and_no_empty_text() {
        let en = Lang::En.texts();
        let ja = Lang::Ja.texts();
        let missing_ja: Vec<&String> = en.keys().filter(|k| !ja.contains_key(*k)).collect();
        let missing_en: Vec<&String> = ja.keys().filter(|k| !en.contains_key(*k)).collect();
        assert!(
            missing_ja.is_empty(),
            "keys missing in ja.toml: {missing_ja:?}"
        );
        assert!(
            missing_en.is_empty(),
            "keys missing in en.toml: {missing_en:?}"
        );
        for (lang, texts) in [("en", en), ("ja", ja)] {
            for (k, v) in texts {
                assert!(!v.trim().is_empty(), "{lang}.toml: {k} is empty");
            }
        }
    }

    #[test]
    fn dates_and_numbers_follow_the_language() {
        let at = Timestamp::parse("2025-11-04T06:05:00.000000Z").unwrap();
        assert_eq!(Lang::Ja.format_time(at), "2025年11月4日 06:05 UTC");
        assert_eq!(Lang::En.format_time(at), "4 Nov 2025 06:05 UTC");
        assert_eq!(
            Lang::Ja.format_time_in(Zone::Tokyo, at),
            "2025年11月4日 15:05 JST"
        );
        let late = Timestamp::parse("2025-12-31T20:30:00.000000Z").unwrap();
        assert_eq!(
            Lang::En.format_time_in(Zone::Tokyo, late),
            "1 Jan 2026 05:30 JST",
            "the date turns over in Japan"
        );
        assert_eq!(Lang::En.format_count(1_234_567), "1,234,567");
        assert_eq!(Lang::Ja.format_count(999), "999");
        assert_eq!(Lang::Ja.format_count(1000), "1,000");
    }

    #[test]
    fn form_dates_are_read_in_the_zone_and_written_back() {
        let at = Zone::Tokyo.parse_local("2025-11-04T15:05").unwrap();
        assert_eq!(at.to_string(), "2025-11-04T06:05:00.000000Z");
        assert_eq!(Zone::Tokyo.local_input(at), "2025-11-04T15:05");
        let day = Zone::Tokyo.parse_local("2025-11-04").unwrap();
        assert_eq!(day.to_string(), "2025-11-03T15:00:00.000000Z");
        assert_eq!(Zone::Utc.local_input(day), "2025-11-03T15:00");
        for bad in [
            "",
            "tomorrow",
            "2025-13-01",
            "2025-11-04T25:00",
            "04/11/2025",
        ] {
            assert_eq!(Zone::Utc.parse_local(bad), None, "{bad}");
        }
    }

    #[test]
    fn language_comes_from_cookie_then_accept_language() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_LANGUAGE,
            "ja-JP,ja;q=0.9,en;q=0.8".parse().unwrap(),
        );
        assert_eq!(Lang::from_headers(&h), Lang::Ja);
        h.insert(header::COOKIE, "a=b; cellops_lang=en".parse().unwrap());
        assert_eq!(Lang::from_headers(&h), Lang::En);
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::En);
        // The zone follows the language unless chosen.
        assert_eq!(Zone::from_headers(&HeaderMap::new(), Lang::Ja), Zone::Tokyo);
        assert_eq!(Zone::from_headers(&HeaderMap::new(), Lang::En), Zone::Utc);
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "cellops_tz=UTC".parse().unwrap());
        assert_eq!(Zone::from_headers(&h, Lang::Ja), Zone::Utc);
    }
}
