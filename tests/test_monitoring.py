import pytest

from mailticket.errors import ConfigError
from mailticket.desk.monitoring import body_fields, load_monitoring, match_source, parse_alert

F = "mailticket.toml"

NAGIOS_SERVICE_PROBLEM = (
    "** PROBLEM Service Alert: web01/HTTP is CRITICAL **",
    """***** Nagios *****

Notification Type: PROBLEM

Service: HTTP
Host: web01
Address: 10.0.0.5
State: CRITICAL

Date/Time: Fri Nov 27 08:00:00 CET 2026

Additional Info:

HTTP CRITICAL - Socket timeout after 10 seconds
""")

NAGIOS_SERVICE_RECOVERY = (
    "** RECOVERY Service Alert: web01/HTTP is OK **",
    """***** Nagios *****

Notification Type: RECOVERY

Service: HTTP
Host: web01
Address: 10.0.0.5
State: OK

Date/Time: Fri Nov 27 08:12:00 CET 2026

Additional Info:

HTTP OK: HTTP/1.1 200 OK - 1520 bytes in 0.004 second response time
""")

NAGIOS_HOST_PROBLEM = (
    "** PROBLEM Host Alert: db02 is DOWN **",
    """***** Nagios *****

Notification Type: PROBLEM
Host: db02
State: DOWN
Address: 10.0.0.9
Info: PING CRITICAL - Packet loss = 100%

Date/Time: Fri Nov 27 08:00:00 CET 2026
""")

NAGIOS_HOST_RECOVERY = ("** RECOVERY Host Alert: db02 is UP **",
                        "Notification Type: RECOVERY\nHost: db02\nState: UP\n"
                        "Info: PING OK - Packet loss = 0%, RTA = 0.41 ms\n")

NAGIOS_ACK = ("** ACKNOWLEDGEMENT Service Alert: web01/HTTP is CRITICAL **",
              "Notification Type: ACKNOWLEDGEMENT\nService: HTTP\nHost: web01\n")

ICINGA_SERVICE_PROBLEM = (
    "[PROBLEM] disk /var on Web server 01 is CRITICAL!",
    """***** Service Monitoring on icinga-master *****

disk /var on Web server 01 is CRITICAL!

Info:    DISK CRITICAL - free space: /var 120 MB (2% inode=90%);

When:    2026-11-27 08:00:00 +0100
Service: disk-/var
Host:    web01
IPv4:    10.0.0.5
""")

ICINGA_SERVICE_RECOVERY = (
    "[RECOVERY] disk /var on Web server 01 is OK!",
    """***** Service Monitoring on icinga-master *****

disk /var on Web server 01 is OK!

Info:    DISK OK - free space: /var 4120 MB (62% inode=90%);

When:    2026-11-27 09:00:00 +0100
Service: disk-/var
Host:    web01
""")

ICINGA_HOST_PROBLEM = (
    "[PROBLEM] Host mail01 is DOWN!",
    """***** Host Monitoring on icinga-master *****

mail01 is DOWN!

Info:    CRITICAL - Host Unreachable (10.0.0.25)

When:    2026-11-27 08:00:00 +0100
Host:    mail01 (mail01.example.com)
IPv4:    10.0.0.25
""")

ICINGA_DOWNTIME = ("[DOWNTIMESTART] Host mail01 is UP!", "Host:    mail01\n")

CHECKMK_SERVICE_PROBLEM = (
    "Check_MK: fs01/Filesystem /srv OK -> CRIT",
    """Host:     fs01 (fs01)
Service:  Filesystem /srv
Event:    OK -> CRITICAL
Address:  10.1.0.7
Date / Time: Fri Nov 27 08:00:00 CET 2026
Summary:  Used: 96.12% - 961 GiB of 1.00 TiB (warn/crit at 80.00%/90.00% used)(!!)
""")

CHECKMK_SERVICE_RECOVERY = (
    "Check_MK: fs01/Filesystem /srv CRIT -> OK",
    """Host:     fs01 (fs01)
Service:  Filesystem /srv
Event:    CRITICAL -> OK
Address:  10.1.0.7
Summary:  Used: 41.02% - 410 GiB of 1.00 TiB
""")

CHECKMK_HOST_PROBLEM = (
    "Check_MK: sw-core-1 - UP -> DOWN",
    "Host:     sw-core-1 (Core switch)\nEvent:    UP -> DOWN\nAddress:  10.1.0.1\n"
    "Output:   CRIT - 10.1.0.1: rta nan, lost 100%\n")

CHECKMK_STARS_PROBLEM = (
    "*** PROBLEM *** fs01 Filesystem /srv is CRIT",
    "Host:     fs01\nService:  Filesystem /srv\nState:    CRIT\nOutput:   CRIT - 96% used\n")

CHECKMK_STARS_RECOVERY = (
    "*** RECOVERY *** fs01 Filesystem /srv is OK",
    "Host:     fs01\nService:  Filesystem /srv\nState:    OK\nOutput:   OK - 41% used\n")

CHECKMK_ACK = ("Check_MK: fs01/Filesystem /srv ACKNOWLEDGEMENT (CRIT)",
               "Host: fs01\nService: Filesystem /srv\n")

ZABBIX_PROBLEM = (
    "Problem: High CPU utilization (over 90% for 5m)",
    """Problem started at 08:00:12 on 2026.11.27
Problem name: High CPU utilization (over 90% for 5m)
Host: app03
Severity: Warning
Operational data: Current utilization: 95.2 %
Original problem ID: 48213
""")

ZABBIX_RESOLVED = (
    "Resolved in 7m 3s: High CPU utilization (over 90% for 5m)",
    """Problem has been resolved at 08:07:15 on 2026.11.27
Problem name: High CPU utilization (over 90% for 5m)
Problem duration: 7m 3s
Host: app03
Severity: Warning
Original problem ID: 48213
""")

ZABBIX_OLD_PROBLEM = (
    "PROBLEM: Processor load is too high on app03",
    """Trigger: Processor load is too high on app03
Trigger status: PROBLEM
Trigger severity: Warning
Trigger URL:

Item values:

1. Processor load (1 min average per core) (app03:system.cpu.load[percpu,avg1]): 5.2
Original event ID: 1277
""")

ZABBIX_OLD_OK = (
    "OK: Processor load is too high on app03",
    "Trigger: Processor load is too high on app03\nTrigger status: OK\n"
    "Trigger severity: Warning\n")

ZABBIX_UPDATE = ("Updated problem in 2m: High CPU utilization",
                 "admin acknowledged problem\nHost: app03\n")


@pytest.mark.parametrize("mail,key,state,host,service,summary", [
    (NAGIOS_SERVICE_PROBLEM, "web01/http", "problem", "web01", "HTTP",
     "HTTP CRITICAL - Socket timeout after 10 seconds"),
    (NAGIOS_SERVICE_RECOVERY, "web01/http", "recovery", "web01", "HTTP",
     "HTTP OK: HTTP/1.1 200 OK - 1520 bytes in 0.004 second response time"),
    (NAGIOS_HOST_PROBLEM, "db02", "problem", "db02", None, "PING CRITICAL - Packet loss = 100%"),
    (NAGIOS_HOST_RECOVERY, "db02", "recovery", "db02", None,
     "PING OK - Packet loss = 0%, RTA = 0.41 ms"),
    (ICINGA_SERVICE_PROBLEM, "web01/disk-/var", "problem", "web01", "disk-/var",
     "DISK CRITICAL - free space: /var 120 MB (2% inode=90%);"),
    (ICINGA_SERVICE_RECOVERY, "web01/disk-/var", "recovery", "web01", "disk-/var",
     "DISK OK - free space: /var 4120 MB (62% inode=90%);"),
    (ICINGA_HOST_PROBLEM, "mail01", "problem", "mail01", None,
     "CRITICAL - Host Unreachable (10.0.0.25)"),
    (CHECKMK_SERVICE_PROBLEM, "fs01/filesystem /srv", "problem", "fs01", "Filesystem /srv",
     "Used: 96.12% - 961 GiB of 1.00 TiB (warn/crit at 80.00%/90.00% used)(!!)"),
    (CHECKMK_SERVICE_RECOVERY, "fs01/filesystem /srv", "recovery", "fs01", "Filesystem /srv",
     "Used: 41.02% - 410 GiB of 1.00 TiB"),
    (CHECKMK_HOST_PROBLEM, "sw-core-1", "problem", "sw-core-1", None,
     "CRIT - 10.1.0.1: rta nan, lost 100%"),
    (CHECKMK_STARS_PROBLEM, "fs01/filesystem /srv", "problem", "fs01", "Filesystem /srv",
     "CRIT - 96% used"),
    (CHECKMK_STARS_RECOVERY, "fs01/filesystem /srv", "recovery", "fs01", "Filesystem /srv",
     "OK - 41% used"),
    (ZABBIX_PROBLEM, "app03/high cpu utilization (over 90% for 5m)", "problem", "app03",
     "High CPU utilization (over 90% for 5m)", "Current utilization: 95.2 %"),
    (ZABBIX_RESOLVED, "app03/high cpu utilization (over 90% for 5m)", "recovery", "app03",
     "High CPU utilization (over 90% for 5m)", "High CPU utilization (over 90% for 5m)"),
    (ZABBIX_OLD_PROBLEM, "app03/processor load is too high on app03", "problem", "app03",
     "Processor load is too high on app03", "Processor load is too high on app03"),
    (ZABBIX_OLD_OK, "app03/processor load is too high on app03", "recovery", "app03",
     "Processor load is too high on app03", "Processor load is too high on app03"),
])
def test_parse_alert(mail, key, state, host, service, summary):
    alert = parse_alert(*mail)
    assert alert is not None
    assert (alert.key, alert.state, alert.host, alert.service, alert.summary) == (
        key, state, host, service, summary)


@pytest.mark.parametrize("problem,recovery", [
    (NAGIOS_SERVICE_PROBLEM, NAGIOS_SERVICE_RECOVERY), (NAGIOS_HOST_PROBLEM, NAGIOS_HOST_RECOVERY),
    (ICINGA_SERVICE_PROBLEM, ICINGA_SERVICE_RECOVERY),
    (CHECKMK_SERVICE_PROBLEM, CHECKMK_SERVICE_RECOVERY),
    (CHECKMK_STARS_PROBLEM, CHECKMK_SERVICE_RECOVERY),
    (ZABBIX_PROBLEM, ZABBIX_RESOLVED), (ZABBIX_OLD_PROBLEM, ZABBIX_OLD_OK),
])
def test_recovery_has_the_key_of_its_problem(problem, recovery):
    assert parse_alert(*problem).key == parse_alert(*recovery).key


@pytest.mark.parametrize("mail", [NAGIOS_ACK, ICINGA_DOWNTIME, CHECKMK_ACK, ZABBIX_UPDATE])
def test_other_notification_types_are_not_alerts(mail):
    assert parse_alert(*mail) is None


@pytest.mark.parametrize("subject,body", [
    ("Printer broken", "Hi, the printer on floor 2 is broken."),
    ("", ""),
    ("*** PROBLEM *** something", "no host line here"),
    ("OK: thanks", "Thank you!"),
    ("Re: ** PROBLEM Service Alert: web01/HTTP is SOMETHING **", ""),
])
def test_ordinary_mail_is_not_an_alert(subject, body):
    assert parse_alert(subject, body) is None


def test_host_display_name_in_subject_is_overridden_by_body():
    alert = parse_alert("[PROBLEM] Host Mail Server is DOWN!", "Host:    mail01\nInfo: down\n")
    assert alert.key == "mail01"


def test_subject_alone_is_enough_for_nagios():
    alert = parse_alert("** PROBLEM Service Alert: web01/Disk /var is WARNING **", "")
    assert (alert.key, alert.summary) == ("web01/disk /var", "web01/Disk /var is WARNING")


def test_body_fields_take_the_next_line_after_an_empty_value():
    f = body_fields("Additional Info:\n\n  HTTP CRITICAL\nHost: x\n")
    assert f == {"additional info": "HTTP CRITICAL", "host": "x"}


# ---------------------------------------------------------------- config

def test_load_and_match_sources():
    sources = load_monitoring({"monitoring": [
        {"name": "nagios", "from": "nagios@mon.example.com", "subject": r"^\*\* (PROBLEM|RECOVERY)"},
        {"name": "zabbix", "from": ["@zabbix.example.com"], "impact": "high", "category": "network"},
    ]}, F)
    assert match_source(sources, "Nagios@mon.example.com", NAGIOS_HOST_PROBLEM[0]).name == "nagios"
    assert match_source(sources, "nagios@mon.example.com", "Hello") is None
    z = match_source(sources, "alerts@zabbix.example.com", "anything")
    assert (z.name, z.impact, z.urgency, z.category) == ("zabbix", "high", "medium", "network")
    assert match_source(sources, "user@example.com", NAGIOS_HOST_PROBLEM[0]) is None


@pytest.mark.parametrize("data,key,words", [
    ({"monitoring": [{"name": "n", "from": "a@b.c", "subject": "(broken"}]}, "monitoring[0].subject",
     "broken regular expression"),
    ({"monitoring": [{"name": "n"}]}, "monitoring[0].from", "non-empty list"),
    ({"monitoring": [{"name": "n", "from": ["nobody"]}]}, "monitoring[0].from[0]", "neither"),
    ({"monitoring": [{"from": "a@b.c"}]}, "monitoring[0].name", "needs a name"),
    ({"monitoring": [{"name": "n", "from": "a@b.c"}, {"name": "n", "from": "a@b.c"}]},
     "monitoring[1].name", "duplicate"),
    ({"monitoring": [{"name": "n", "from": "a@b.c", "host": "x"}]}, "monitoring[0].host",
     "unknown key"),
    ({"monitoring": [{"name": "n", "from": "a@b.c", "category": "plumbing"}]},
     "monitoring[0].category", "not valid"),
    ({"monitoring": [{"name": "n", "from": "a@b.c", "impact": "huge"}]}, "monitoring[0].impact",
     "not valid"),
    ({"monitoring": {"name": "n"}}, "monitoring", "list of tables"),
    ({"monitoring": ["n"]}, "monitoring[0]", "must be a table"),
])
def test_config_errors_name_file_and_key(data, key, words):
    with pytest.raises(ConfigError) as exc:
        load_monitoring(data, F)
    assert exc.value.file == F and exc.value.key == key and words in exc.value.problem
