"""The optional MCP server (`pip install 'ohf-aws[mcp]'`, `ohf mcp`): ohf for AI assistants.

Only `ohf.mcp.server` imports the MCP SDK; the other modules here are plain ohf (the tool table,
the answers, the masked config, the prompts), so they are tested without it. Never imported by
the HF call path: `python -m ohf <call>` loads nothing of this package or of the SDK.
"""
