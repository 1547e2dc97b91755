Running 5s test @ http://127.0.0.1:18180/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.12ms    2.79ms  21.18ms   80.64%
    Req/Sec    80.16k     5.99k   86.31k    90.00%
  398879 requests in 5.00s, 60.48MB read
Requests/sec:  79718.59
Transfer/sec:     12.09MB
