"""Reading mail: raw bytes to a parsed mail (MIME parts, charsets, HTML to text, attachments,
TNEF, quotes and signatures, bounces, classification, forwarded mail, Authentication-Results).
Imports only the shared basics (errors, disk); nothing of the desk, outbound or the service.
"""
