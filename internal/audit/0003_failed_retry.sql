-- Schema version 3: a delivery whose processing failed is tried again with a
-- growing pause for a day after its receipt (Store.RetryFailed). This index
-- finds the failed ones without reading the inbox; a failed delivery's
-- done_at is when its last attempt failed.
CREATE INDEX deliveries_failed ON deliveries (received_at) WHERE state = 'failed';
