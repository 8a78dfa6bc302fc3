"""Fill a .po file's empty translations from a Python table (a translator's helper):
    .venv/bin/python scripts/fill_po.py mailticket/locale/sv/LC_MESSAGES/mailticket.po TABLE.py
TABLE.py defines SV = {msgid: translation}. Existing translations are kept."""
import runpy
import sys

from babel.messages.pofile import read_po, write_po

po_path, table_path = sys.argv[1], sys.argv[2]
table = runpy.run_path(table_path)["SV"]
with open(po_path, "rb") as f:
    catalog = read_po(f)
missing = []
for message in catalog:
    if message.id and not message.string:
        if message.id in table:
            message.string = table[message.id]
        else:
            missing.append(message.id)
with open(po_path, "wb") as f:
    write_po(f, catalog, omit_header=False, width=100)
print("\n".join(f"untranslated: {m!r}" for m in missing) or "all translated")
