"""The egress review service: release requests, automated disclosure checks, steward review, release."""
