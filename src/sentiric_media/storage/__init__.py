"""Recording storage (spool, file://, s3://): the recording issue."""
