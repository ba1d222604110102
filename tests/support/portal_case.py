"""PortalTestCase: the unittest base class of the end-to-end tests.

Python 3 standard library only.
"""

import unittest

from pg_cluster import PostgresCluster
from pgbouncer import PgBouncer
from portal_server import Portal


class PortalTestCase(unittest.TestCase):
    """One PostgreSQL cluster and one migrated, listening server per class.

    Subclasses may set PORTAL_ENV (a dict) for the server; PGBOUNCER = True
    to put the server (and the CLI) behind PgBouncer in transaction mode
    (`migrate` then goes straight to PostgreSQL through DATABASE_DIRECT_URL,
    as on Fly, SPEC §3); DURABLE_DATABASE = True for a cluster with fsync
    and synchronous commit on (the suite's default is off, for speed). Everything is torn down by
    class clean-ups, which run even when setUpClass fails half-way. Every
    server, the class's and those of start_portal(), is checked when it is
    cleaned up (Portal.check_exit): exit 0 unless the test collected the
    status itself, and no sanitizer report.
    """

    PORTAL_ENV = {}
    PGBOUNCER = False
    DURABLE_DATABASE = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg = PostgresCluster(durable=cls.DURABLE_DATABASE)
        cls.addClassCleanup(cls.pg.destroy)
        cls.database_url = cls.pg.url
        env = dict(cls.PORTAL_ENV)
        if cls.PGBOUNCER:
            cls.pgbouncer = PgBouncer(cls.pg)
            cls.addClassCleanup(cls.pgbouncer.cleanup)
            cls.database_url = cls.pgbouncer.url
            env.setdefault("DATABASE_DIRECT_URL", cls.pg.url)
        cls.portal = Portal(cls.database_url, env=env)
        cls.addClassCleanup(cls.portal.cleanup)
        cls.portal.migrate()
        cls.portal.start()

    def start_portal(self, env=None, wait="ready", database_url=None):
        """An extra server for one test (checked and cleaned up after it)."""
        p = Portal(database_url or self.database_url, env=env)
        self.addCleanup(p.cleanup)
        p.start(wait=wait)
        return p
