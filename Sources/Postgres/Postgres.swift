// libpq layer
