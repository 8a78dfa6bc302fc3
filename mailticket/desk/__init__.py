"""The desk: the incident process (pipeline, tickets, rules, SLA clocks, escalation, agents'
commands and mail, monitoring alerts, reports, signed reply addresses).
Imports inbound, outbound and the shared basics; never the service.
"""
