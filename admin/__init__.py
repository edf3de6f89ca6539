"""The admin pages: people, projects, datasets and the audit log, in the browser (/services/admin/).

Every action goes through the same core services as the `enclave` command (enclave.accounts,
enclave.projects, enclave.access), so it is checked and audited the same way. Only accounts with the
admin role get in, behind the hub's login with MFA (the review service's OAuth gate). An admin
administers and never sees data: the pages show no record, no file content and no risk report detail
(a dataset's smallest classes are drawn from the data), only names, counts and summary measures.

It stands above the parts (.importlinter): it reads ingest's datasets and uses the review service's
login gate and look.
"""
