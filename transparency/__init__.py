"""The public transparency register: what the enclave does, for anyone to read and to keep.

It stands above the parts (it reads the review service's releases and ingest's datasets and opt-out
totals, see .importlinter) and publishes only what `[transparency]` allows: projects and their approval,
datasets by name, releases as counts and file kinds, opt-out totals below the threshold as "fewer than
N", and anchors of the audit chain so two saved copies can be compared. Never a person, a pseudonym, a
file name or a file's contents.
"""
