"""RADIUS: packet handling without I/O (``packets``, ``handler``, ``state``), the UDP loop
(``server``), access profiles and Disconnect-Requests (RFC 5176) to the NAS."""
