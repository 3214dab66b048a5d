"""The contract: names, vocabulary, shapes and errors that every part of the platform shares.

Workflows, activities, the worker, the store, the providers, the client library and the CLI all
read their names and message shapes from here, and nothing here is defined twice. Pure (pydantic
and `temporalio.common` only, no I/O), so the workflow sandbox passes it through. Everything in
the message models is recorded in workflow history: texts are capped and nothing secret goes in.

- contract.names: task queue, workflow types, workflow IDs, signals, queries, activity names;
- contract.search_attributes: the custom search attributes and their types;
- contract.vocabulary: statuses, triggers, outcomes, model tiers, conversation modes, providers;
- contract.heartbeat: a heartbeat workflow's input, carried state and status view;
- contract.messages: activity requests and results, and the caps on what enters history;
- contract.llm: the provider-neutral shapes of one LLM call;
- contract.vision: the vision workflow's input;
- contract.errors: the project's error hierarchy.
"""
