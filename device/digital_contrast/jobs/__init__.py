"""Durable jobs (software item SI-JOBS): the queue lives in the database; workers claim a job
under a lease, run the locked core on exactly the pinned instances and publish atomically."""
