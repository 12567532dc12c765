"""Adapters for agent frameworks, each an optional extra: nothing here is imported by default.

openai_agents  `toolkit.openai_agents_tools()`: OpenAI Agents SDK FunctionTools   [openai-agents]
langchain      `toolkit.langchain_tools()`: LangChain StructuredTools             [langchain]
"""
