"""Service plumbing: configuration, access rules, admission and scheduling, the one triage path
(answering), audit log, telemetry, the Flask app and the waitress server, sd_notify, the
ward-network front and files at rest."""
