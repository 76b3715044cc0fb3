"""What the tests and the benchmarks share to drive Encore from outside: the whole service as
a process of its own (``service``), throwaway databases on the MariaDB server (``mysql``) and
the reading of ``/metrics`` (``metrics``). Nothing in the product imports it."""
