"""Patterns that mark quoted history in a reply, as data: words per language, compiled once.

Every regular expression here is applied to one line (or a few joined lines) cut to a bounded
length, and none nests quantifiers, so matching stays linear in the size of the mail.
"""
from __future__ import annotations

import re

# The verb that ends an attribution line ("On <date>, <name> wrote:"), per language.
ATTRIBUTION_VERBS = (
    "wrote", "writes", "said",                                  # en
    "a écrit", "a ecrit", "écrit",                              # fr
    "schrieb", "geschrieben",                                   # de
    "escribió", "escribio",                                     # es
    "ha scritto", "scritto",                                    # it
    "schreef", "het volgende geschreven", "geschreven",         # nl
    "escreveu",                                                 # pt
    "skrev", "skrifaði",                                        # sv, da, no, is
    "kirjoitti",                                                # fi
    "napisał", "napisał(a)", "napisała", "napsal", "napsal(a)",  # pl, cs
    "написал", "написал(а)", "написала", "пише", "писал",         # ru, uk
    "写道", "寫道", "が書きました", "のメッセージ", "のメール", "님이 작성", "작성",  # zh, ja, ko
    "írta", "yazdı", "scrise", "έγραψε", "כתב", "كتب",         # hu, tr, ro, el, he, ar
)

# Words an attribution line starts with (used to find where a wrapped attribution begins).
ATTRIBUTION_OPENERS = (
    "on", "le", "am", "el", "il", "in data", "op", "em", "den", "dnia", "w dniu", "at",
    "en", "på", "----",
)
# Languages that put the verb before the date ("X schrieb am <date> um <time> Uhr:").
ATTRIBUTION_VERBS_BEFORE_DATE = ("schrieb am", "wrote on", "a écrit le", "skrev den")
# Thunderbird in the Nordic languages puts the verb before the name: "Den <date>, skrev Anna:".
ATTRIBUTION_VERBS_BEFORE_NAME = ("skrev",)

# Keys of a header block that some clients write above the quoted mail (Outlook and others).
FROM_KEYS = (
    "from", "von", "de", "da", "van", "från", "fra", "od", "от", "lähettäjä", "feladó",
    "kimden", "expéditeur", "remitente", "mittente", "afzender", "nadawca", "odesílatel",
    "发件人", "寄件者", "差出人", "보낸 사람", "message du", "frá",
)
OTHER_HEADER_KEYS = (
    "sent", "date", "to", "cc", "bcc", "subject", "reply-to", "gesendet", "datum", "an",
    "betreff", "kopie", "envoyé", "envoyé le", "envoyé par", "à", "a", "objet", "copie à",
    "sujet", "cci", "enviado", "enviada", "enviado el", "para", "asunto", "assunto",
    "inviato", "data", "oggetto", "risposta", "verzonden", "aan", "onderwerp", "skickat",
    "till", "ämne", "kopia", "sendt", "til", "emne", "dato", "wysłano", "do", "temat",
    "отправлено", "кому", "тема", "дата", "копия", "lähetetty", "vastaanottaja", "aihe",
    "päivämäärä", "odesláno", "komu", "předmět", "elküldve", "címzett", "tárgy",
    "gönderildi", "kime", "konu", "发送时间", "收件人", "主题", "抄送", "送信日時", "宛先", "件名",
    "dagsetning", "efni", "return-path", "message-id", "in-reply-to", "references",
)

# Lines that open a forwarded or an original message, in several languages.
ORIGINAL_MESSAGE_WORDS = (
    "original message", "original-nachricht", "ursprüngliche nachricht", "message d'origine",
    "message original", "mensaje original", "messaggio originale", "oorspronkelijk bericht",
    "originalmeddelande", "ursprungligt meddelande", "oprindelig besked",
    "oprindelig meddelelse", "opprinnelig melding", "alkuperäinen viesti",
    "wiadomość oryginalna", "oryginalna wiadomość", "исходное сообщение",
    "původní zpráva", "mensagem original", "eredeti üzenet", "原始邮件", "元のメッセージ",
    "reply message", "original mail", "mail original", "ursprüngliche mail",
    "originalnachricht", "originalt meddelande",
)
FORWARD_WORDS = (
    "forwarded message", "forwarded e-mail", "weitergeleitete nachricht",
    "message transféré", "message réexpédié", "mensaje reenviado", "messaggio inoltrato",
    "doorgestuurd bericht", "vidarebefordrat meddelande", "videresendt besked",
    "videresendt melding", "välitetty viesti", "przekazana wiadomość",
    "пересылаемое сообщение", "přeposlaná zpráva", "mensagem encaminhada",
    "転送されたメッセージ", "转发的邮件",
)
FORWARD_INTRO_LINES = (
    "begin forwarded message:", "début du message réexpédié :",
    "début du message réexpédié:", "inicio del mensaje reenviado:",
    "anfang der weitergeleiteten nachricht:", "inizio messaggio inoltrato:",
    "början på vidarebefordrat meddelande:", "start på videresendt besked:",
    "begin doorgestuurd bericht:", "början på vidarebefordrat brev:",
    "begyndelse på videresendt besked:", "start på videresendt melding:",
)

# "Sent from my iPhone" and its kin: a line like this ends the new text.
MOBILE_SIGNATURES = (
    r"sent from my [^,.\n]{1,60}(?:[,.]\s*please excuse[^\n]{0,80})?[.!]?",
    r"sent from my [^,.\n]{1,60}[.,]?\s*please excuse[^\n]{0,80}",
    r"sent (?:from|with|via) (?:outlook|windows mail|mailbox|mail|yahoo mail|airmail|"
    r"aol mail|gmail|blackberry|samsung|my mobile|mobile|\[mail\])[^\n]{0,80}",
    r"sent via (?:mobile|my [^\n]{1,30}|blackberry|[^\n]{1,25} app)",
    r"get (?:\[?outlook for (?:ios|android)\]?)[^\n]{0,60}",
    r"(?:envoyé|envoye) (?:depuis|de|à partir de) (?:mon|outlook)[^\n]{0,60}",
    r"von meinem [^\n]{1,60} gesendet[.!]?",
    r"gesendet (?:von|mit) (?:meinem|outlook|mail|yahoo|gmx|web\.de|[^\n]{1,40}(?:iphone|ipad|android|smartphone|mobil))[^\n]{0,60}",
    r"diese nachricht wurde von meinem [^\n]{1,80} gesendet\.?",
    r"(?:sendt|skickat|sänt) fr[aå]n? (?:min|mitt|outlook|e-post|mail|yahoo) ?[^\n]{0,40}",
    r"(?:hämta|få|hent) outlook (?:för|for) (?:ios|android)[^\n]{0,60}",
    r"verzonden (?:met|vanaf|van mijn) [^\n]{1,60}",
    r"enviado desde mi [^\n]{1,60}",
    r"enviado do meu [^\n]{1,60}",
    r"inviato da(?:l mio)? (?:iphone|ipad|android|smartphone|outlook|[^\n]{0,30}(?:mobile|cellulare))[^\n]{0,40}",
    r"wysłane z [^\n]{1,60}",
    r"отправлено с [^\n]{1,60}",
    r"從我的 ?[^\n]{1,30}傳送",
    r"从我的 ?[^\n]{1,30}发送",
    r"<<sent by [^\n]{1,40}>>",
    r"\((?:sent from|sent by) [^\n)]{1,40}\)",
    r"from my iphone[^\n]{0,20}",
    r"[^\n]{0,30} from mobile",
)

# Warnings a mail gateway puts above the new text ("CAUTION: This email originated from outside").
EXTERNAL_BANNERS = (
    r"caution: this (?:e-?mail|message) (?:originated|was sent|came) from outside",
    r"\[?external\]?:? this (?:e-?mail|message) (?:originated|was sent|came) from outside",
    r"(?:warning|attention|notice): this (?:e-?mail|message) (?:originated|was sent|came) from outside",
    r"external (?:e-?mail|sender)[:!] ",
    r"this (?:e-?mail|message) (?:originated|was sent|came) from outside (?:of )?(?:the|your|this) ",
)

# Markers a help desk puts in its own mails to show where a reply ends.
REPLY_ABOVE_MARKERS = (
    r"[#\-=\s]{0,20}(?:please )?(?:type|write|reply|respond|enter)(?: your (?:reply|response))? above this line",
)

SEPARATOR_CHARS = "-_=*#~+—–"


def _alternatives(words: tuple[str, ...]) -> str:
    """A regex alternation of literal words, longest first."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


VERBS_LOWER = tuple(verb.lower() for verb in ATTRIBUTION_VERBS)
VERB_BOUNDARY = " \t\xa0\u202f,)>\"'"
VERB_TRAILER = " \t\xa0\u202f\u2009:：-"  # what may follow the verb: "wrote:", "a écrit :", "wrote ----"


def ends_with_verb(text: str) -> bool:
    """Whether a line ends with an attribution verb ("... wrote:", "... a écrit :", "wrote ----")."""
    core = text[-60:].rstrip(VERB_TRAILER).lower()
    if not core.endswith(VERBS_LOWER):
        return False
    for verb in VERBS_LOWER:
        if core.endswith(verb):
            before = core[:-len(verb)]
            if not before or before[-1] in VERB_BOUNDARY:
                return True
    return False


VERB_BEFORE_DATE = re.compile(
    r"\s(?:" + _alternatives(ATTRIBUTION_VERBS_BEFORE_DATE) + r")\s[^\n]{1,80}?:\s?$", re.IGNORECASE
)
VERB_BEFORE_NAME = re.compile(
    r"\s(?:" + _alternatives(ATTRIBUTION_VERBS_BEFORE_NAME) + r")\s[^:\n]{1,60}:\s?$", re.IGNORECASE
)
STRONG_OPENER = re.compile(
    r"^[-\s]{0,6}(?:" + _alternatives(ATTRIBUTION_OPENERS) + r")[\s.,]", re.IGNORECASE
)
OPENER_START = re.compile(
    r"^[-\s]{0,6}(?:" + _alternatives(ATTRIBUTION_OPENERS) + r")[\s.,]"
    r"|^\W{0,4}\w{1,12}[.,]?\s\d|^\W{0,4}\d",
    re.IGNORECASE,
)
# Old Gmail, no verb and maybe no colon: "2016-03-03 17:21 GMT+01:00 Some One", "2013/7/20 Sam <s@x.org>"
GMAIL_DATE_LINE = re.compile(
    r"^\s{0,4}\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2} GMT[+-]\d{1,2}:\d{2} [^\d\n:=]{1,80}$"
    r"|^\s{0,4}\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?: \d{1,2}:\d{2}(?: GMT[+-]\d{1,2}:\d{2})?)? "
    r"[^\n:=<]{1,100}<[^<>@\s]{1,100}@[^<>\s]{1,100}>\s?:?\s?$"
)
TIME_OR_YEAR = re.compile(r"\d{1,2}[:.]\d{2}|\b(?:19|20)\d{2}\b")
ADDRESS_COLON_END = re.compile(r"(?:@[\w.-]{1,200}|\))\s?>?\s?\)?\s?[:：]\s?$")
HAS_ADDRESS = re.compile(r"[\w.+-]@[\w-]{1,100}\.|<[^<>\n]{0,200}>")
DIGIT = re.compile(r"\d")

HEADER_LINE = re.compile(
    r"^\s{0,8}\*{0,2}(" + _alternatives(FROM_KEYS + OTHER_HEADER_KEYS) + r")\s?\*{0,2}\s?[:：]",
    re.IGNORECASE,
)
FROM_KEY = re.compile(r"^(?:" + _alternatives(FROM_KEYS) + r")$", re.IGNORECASE)

ORIGINAL_MESSAGE = re.compile(
    r"^\s{0,8}\*?[-_=\s]{2,}\s?(?:" + _alternatives(ORIGINAL_MESSAGE_WORDS) + r")\s?[-_=]{2,}\s?\*?\s?$",
    re.IGNORECASE,
)
FORWARD_MARKER = re.compile(
    r"^\s{0,8}\*?[-_=\s]{2,}\s?(?:" + _alternatives(FORWARD_WORDS) + r")\b[^\n]{0,200}?[-_=]{2,}\s?\*?\s?$"
    r"|^\s{0,8}(?:" + _alternatives(FORWARD_INTRO_LINES) + r")\s?$"
    r"|^\s{0,8}forwarded message from [^\n]{1,300}:\s?$",
    re.IGNORECASE,
)
MOBILE_SIGNATURE = re.compile(
    r"^\s{0,8}(?:" + "|".join(MOBILE_SIGNATURES) + r")\s?$", re.IGNORECASE
)
EXTERNAL_BANNER = re.compile(r"^\s{0,8}\**(?:" + "|".join(EXTERNAL_BANNERS) + r")", re.IGNORECASE)
REPLY_ABOVE = re.compile(r"^\s{0,8}(?:" + "|".join(REPLY_ABOVE_MARKERS) + r")", re.IGNORECASE)
QUOTE_LINE = re.compile(r"^\s{0,8}[A-Za-z]?>")
SEPARATOR_LINE = re.compile(r"^\s{0,8}[" + re.escape(SEPARATOR_CHARS) + r"]{2,}\s?$|^\s{0,8}ᐧ\s?$")
SIGNATURE_DELIMITER = re.compile(r"^(?:--|—) ?$")  # "-- " (RFC 3676), "--", a lone em dash
UNDERSCORE_LINE = re.compile(r"^\s{0,8}_{2,}\s?$")
CODE_FENCE = re.compile(r"^\s{0,3}```")
