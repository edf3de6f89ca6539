"""The enclave's single-user server policy: nothing leaves JupyterLab except through the release queue.

Loaded by /etc/jupyter/jupyter_server_config.py in the notebook image:

- ``authorizer.NoDownloadAuthorizer`` refuses ``/files/``, ``/view/`` and nbconvert with a 403 that
  points to the release request page;
- ``contents.SizeLimitedContentsManager`` refuses contents-API reads and writes of one file above a
  limit, so bulk data goes neither out nor in through the browser, while notebooks open and save.

Every refusal is also reported to the hub (``report``), which records it in the audit log as
``notebook.download_refused``; the researcher's answer does not wait for it.

Limits and the release page come from environment variables the spawner sets (see ``limits``).
"""

from enclave_policy.limits import PolicyLimits, release_url  # noqa: F401
