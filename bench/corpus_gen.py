"""A deterministic corpus of realistic support mails for the benchmarks.

The mix (issue 8): 60 % plain text, 25 % text + HTML, 10 % with a 10-50 KB attachment,
5 % ISO-8859-1 / Windows-1252 with å ä ö; a third of the mails are replies to earlier ones
(In-Reply-To/References to the earlier mail, "Re:" subject, from the same requester).

    from bench.corpus_gen import generate
    mails = generate(10_000, seed=8)          # list[GeneratedMail], same bytes for the same seed

Run as a script to write an mbox: ``python bench/corpus_gen.py N OUT.mbox``.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from pathlib import Path

KINDS = (("plain", 60), ("html", 25), ("attachment", 10), ("latin1", 5))

FIRST = ("Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Eva", "Per", "Sofia", "Anders", "Lena", "Mikael",
         "Sara", "Nils", "Emma", "Oskar", "Ingrid", "Björn", "Åsa", "Göran")
LAST = ("Svensson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
        "Gustafsson", "Pettersson", "Lindqvist", "Öberg", "Åström", "Bergström", "Holm")
DOMAINS = ("customer.example", "kommun.example", "bolag.example", "skola.example", "region.example")
THINGS = ("printer on floor 3", "VPN client", "Outlook calendar", "shared drive S:", "laptop docking station",
          "badge reader at the main entrance", "Teams meeting room", "password reset page", "payroll system",
          "Wi-Fi in building B", "scanner in the archive", "ERP login", "second monitor", "phone headset")
PROBLEMS = ("does not work since this morning", "keeps disconnecting every few minutes",
            "shows an error when I open it", "is very slow today", "asks for my password again and again",
            "stopped working after the update", "cannot be reached from home", "prints only blank pages")
LATIN1_LINES = ("Hej! Skrivaren på våning två är trasig igen.", "Jag kan inte öppna filen på den gemensamma ytan.",
                "Tangentbordet har slutat fungera efter att jag spillde kaffe på det, förlåt.",
                "Går det att få en ny skärm? Den gamla flimrar hela tiden när jag är på kontoret.",
                "Vårt mötesrum på plan fyra har ingen ljudanslutning längre, hälsningar från ekonomiavdelningen.")
FILLER = ("I have restarted the computer twice and it did not help.", "My colleague has the same problem.",
          "It is quite urgent because we have a deadline on Friday.", "Please call me if you need more details.",
          "The error message says 'Access denied (0x80070005)'.", "I tried from another computer as well.",
          "This started after the maintenance window last night.", "Screenshots can be sent on request.")


@dataclass(frozen=True)
class GeneratedMail:
    index: int
    kind: str                 # plain | html | attachment | latin1
    message_id: str           # without <>
    sender: str               # address
    name: str                 # display name of the sender
    reply_to_index: int | None  # the earlier mail this one answers
    raw: bytes                # CRLF line ends


def _kinds(n: int, rng: random.Random) -> list[str]:
    """Exactly the shares of KINDS (rounded), in a shuffled order."""
    kinds = []
    for kind, share in KINDS:
        kinds += [kind] * round(n * share / 100)
    kinds = (kinds + ["plain"] * n)[:n]
    rng.shuffle(kinds)
    return kinds


def _body(rng: random.Random, thing: str, problem: str, name: str) -> str:
    lines = [f"Hello,", "", f"The {thing} {problem}."] + rng.sample(FILLER, rng.randint(1, 4))
    return "\n".join(lines + ["", "Best regards,", name, f"Phone +46 8 {rng.randint(100000, 999999)}"]) + "\n"


def _html(text: str) -> str:
    paras = "".join(f"<p>{line}</p>" for line in text.splitlines() if line)
    return (f"<html><head><meta charset=\"utf-8\"><style>p {{margin:0 0 8px}}</style></head>"
            f"<body><div style=\"font-family:Calibri,sans-serif\">{paras}</div></body></html>")


def _attachment(rng: random.Random) -> tuple[bytes, str, str, str]:
    size = rng.randint(10_000, 50_000)
    choice = rng.randrange(3)
    if choice == 0:
        head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
        return head + rng.randbytes(size - len(head)), "application", "pdf", f"report-{rng.randint(1, 999)}.pdf"
    if choice == 1:
        head = b"\x89PNG\r\n\x1a\n"
        return head + rng.randbytes(size - len(head)), "image", "png", f"screenshot-{rng.randint(1, 999)}.png"
    line = b"2026-11-27 08:00:01 ERROR service.auth: token refresh failed (code 401)\n"
    return (line * (size // len(line) + 1))[:size], "text", "plain", "client.log"


def _message(kind, rng, *, sender_name, sender, subject, body, date, message_id, in_reply_to, references):
    if kind == "latin1":
        charset = rng.choice(("iso-8859-1", "windows-1252"))
        text = rng.choice(LATIN1_LINES) + "\n\n" + body.replace("Best regards", "Med vänlig hälsning")
        if charset == "windows-1252":
            text = text.replace("'", "\u2019")  # a curly quote only cp1252 has
        msg = MIMEText(text, "plain", charset)
        from email.header import Header
        msg["Subject"] = Header(subject.replace(" (problem", " på kontoret (problem"), charset)
    else:
        msg = EmailMessage()
        msg["Subject"] = subject
        msg.set_content(body)
        if kind == "html":
            msg.add_alternative(_html(body), subtype="html")
        elif kind == "attachment":
            data, maintype, subtype, filename = _attachment(rng)
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    msg["From"] = formataddr((sender_name, sender), "utf-8")
    msg["To"] = "Service Desk <support@example.com>"
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = " ".join(f"<{r}>" for r in references)
    if "MIME-Version" not in msg:
        msg["MIME-Version"] = "1.0"
    msg["X-Mailer"] = rng.choice(("Microsoft Outlook 16.0", "Apple Mail (2.3731)", "Thunderbird 115.4.1"))
    raw = msg.as_bytes()
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def generate(n: int, *, seed: int = 8, now: datetime | None = None) -> list[GeneratedMail]:
    """``n`` mails in arrival order; the same seed gives the same bytes for the same ``now``
    (default: the start of this hour; the mails are dated in the two hours before it)."""
    rng = random.Random(seed)
    now = now or this_hour()
    step = min(2.0, 7200 / max(n, 1))  # all within two hours before `now`
    kinds = _kinds(n, rng)
    out: list[GeneratedMail] = []
    threads: dict[int, list[str]] = {}  # index of a thread's first mail -> its message ids
    subjects: dict[int, str] = {}
    for i in range(n):
        kind = kinds[i]
        date = now - timedelta(seconds=(n - i) * step)
        message_id = f"bench.{seed}.{i}@{DOMAINS[i % len(DOMAINS)]}"
        reply_to = None
        if threads and i % 3 == 2:  # every third mail: a third of the corpus
            reply_to = rng.choice(list(threads.keys())[-500:])  # answers a recent thread
        if reply_to is not None:
            first = out[reply_to]
            sender, name = first.sender, first.name
            chain = threads[reply_to]
            subject = "Re: " + subjects[reply_to]
            body = f"Hi again,\n\nit still {rng.choice(PROBLEMS)}.\n\n{name}\n\n> {subjects[reply_to]}\n"
            raw = _message(kind, rng, sender_name=name, sender=sender, subject=subject, body=body, date=date,
                           message_id=message_id, in_reply_to=chain[-1], references=chain[-5:])
            chain.append(message_id)
        else:
            first_name, last_name = rng.choice(FIRST), rng.choice(LAST)
            name = f"{first_name} {last_name}"
            local = f"{first_name}.{last_name}".lower().encode("ascii", "ignore").decode() or "user"
            sender = f"{local}{i}@{DOMAINS[i % len(DOMAINS)]}"
            thing, problem = rng.choice(THINGS), rng.choice(PROBLEMS)
            subject = f"{thing[0].upper()}{thing[1:]} {problem} (problem {i})"
            body = _body(rng, thing, problem, name)
            raw = _message(kind, rng, sender_name=name, sender=sender, subject=subject, body=body, date=date,
                           message_id=message_id, in_reply_to=None, references=())
            threads[i], subjects[i] = [message_id], subject
        out.append(GeneratedMail(i, kind, message_id, sender, name, reply_to, raw))
    return out


def this_hour() -> datetime:
    """The start of this hour (UTC): mails must be recent, or the desk rightly does not acknowledge them."""
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def cached(n: int, *, seed: int = 8) -> list[GeneratedMail]:
    """``generate(n, seed=seed)``, kept in /tmp between runs (generating 10,000 takes seconds)."""
    import pickle
    path = Path(f"/tmp/mailticket-bench-corpus-{n}-{seed}-{this_hour():%Y%m%d%H}-{_VERSION}.pickle")
    if path.exists():
        return pickle.loads(path.read_bytes())
    mails = generate(n, seed=seed)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(pickle.dumps(mails))
    tmp.replace(path)
    return mails


_VERSION = 3  # bump when the generator changes, so no stale corpus is used


def write_mbox(mails: list[GeneratedMail], path: Path) -> None:
    """An mbox (mboxrd-style From quoting) of the corpus, for `mailticket import`."""
    with open(path, "wb") as f:
        for m in mails:
            body = m.raw.replace(b"\r\n", b"\n")
            body = b"\n".join((b">" + line if line.lstrip(b">").startswith(b"From ") else line)
                              for line in body.split(b"\n"))
            f.write(b"From bench@example.com Fri Nov 27 09:00:00 2026\n" + body.rstrip(b"\n") + b"\n\n")


def summary(mails: list[GeneratedMail]) -> dict:
    kinds = {}
    for m in mails:
        kinds[m.kind] = kinds.get(m.kind, 0) + 1
    return {"mails": len(mails), "replies": sum(m.reply_to_index is not None for m in mails), **kinds,
            "bytes": sum(len(m.raw) for m in mails)}


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    corpus = generate(count)
    if len(sys.argv) > 2:
        write_mbox(corpus, Path(sys.argv[2]))
    print(summary(corpus))
