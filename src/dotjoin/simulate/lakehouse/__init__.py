"""The lakehouse's upstream systems: :mod:`.ecommerce` (a shop's daily CSV exports) and :mod:`.iot`
(sensor JSON-lines files), deterministic and with ground truth; :mod:`.shop` wires them into the
lakehouse pipeline and the nightly flow.
"""
