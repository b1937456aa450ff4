-- A token handed from one process to another must not let the two together exceed the API's
-- rate in any window (issue 13). `quiet_after` is the instant after which the last holder sent
-- nothing with the token: set when it releases the lease (the release's instant), and read,
-- with a lapsed lease's expiry, by the next holder, which waits one rate window past it.
ALTER TABLE callwindow.tokens ADD COLUMN quiet_after timestamptz;

COMMENT ON COLUMN callwindow.tokens.quiet_after IS
  'When the last holder released the token (it sent nothing with it after that instant); NULL: never released.';
