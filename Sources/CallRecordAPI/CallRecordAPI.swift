// The CallRecordAPI module: written by its own issue.
