-- When the job first called the backend's create: a later attempt of the job asks the backend
-- for an open item with the correlation id before creating again (docs/adr/0008).
ALTER TABLE jobs ADD COLUMN create_started_at TIMESTAMPTZ;
