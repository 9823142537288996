"""Pure domain core: stdlib only. Receives fully loaded dataclasses, returns an EOB."""
