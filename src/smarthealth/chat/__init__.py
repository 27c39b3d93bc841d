"""REST `/query/`, WebSocket chat, sessions and history."""
