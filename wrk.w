Running 6s test @ http://127.0.0.1:18081/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   816.01us  689.04us  13.02ms   96.43%
    Req/Sec    84.81k     9.92k   92.54k    93.33%
  506278 requests in 6.00s, 72.42MB read
Requests/sec:  84341.76
Transfer/sec:     12.07MB
