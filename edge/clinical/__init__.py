"""Clinical logic, no I/O: the triage case, the KTAS/ESI protocol facts, structured features,
ED shorthand, the triage scales, the safety rules, the decision rule, evaluation metrics and the
labelled-data readers. Everything here can be reasoned about without a model or a server."""
