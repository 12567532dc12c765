"""For apps that call functions without MCP: the Toolkit, the tools as OpenAI and Anthropic
function definitions, the two-round confirmation API, and the OpenAI Agents and LangChain adapters
(which use only that public API)."""
