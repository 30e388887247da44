"""The imperative shell: every boto3, SSM, filesystem and subprocess call lives in here."""
