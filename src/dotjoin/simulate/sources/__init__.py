"""Local stand-ins for public APIs (``dotjoin sources serve``): deterministic data, injectable faults.

Our machines have no internet, so tests, the demo and the benchmarks ingest from here. Responses have
exactly the shape of the real services (Open-Meteo JSON, GTFS zip, GTFS-realtime protobuf).
"""
