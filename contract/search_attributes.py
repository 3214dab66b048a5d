"""The custom search attributes of the platform's workflows, and the type each is registered with.

The local server's settings (temporal-dev.yaml) must declare exactly these (client.local_server
checks it when it loads the file, and registers any that an older database lacks); a production
namespace needs them too (`temporal operator search-attribute create`).
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

SA_TENANT = SearchAttributeKey.for_keyword("HeartbeatTenant")
SA_APP = SearchAttributeKey.for_keyword("HeartbeatApp")
SA_AGENT = SearchAttributeKey.for_keyword("HeartbeatAgent")
SA_SLUG = SearchAttributeKey.for_keyword("HeartbeatSlug")
SA_STATUS = SearchAttributeKey.for_keyword("HeartbeatStatus")
SA_FAILURE_COUNT = SearchAttributeKey.for_int("HeartbeatFailureCount")
# A state-machine run (with HeartbeatTenant and HeartbeatApp): its workflow, status and place.
SA_MACHINE = SearchAttributeKey.for_keyword("MachineWorkflow")
SA_MACHINE_STATUS = SearchAttributeKey.for_keyword("MachineStatus")
SA_MACHINE_PLACE = SearchAttributeKey.for_keyword("MachinePlace")

ALL_SEARCH_ATTRIBUTES = (SA_TENANT, SA_APP, SA_AGENT, SA_SLUG, SA_STATUS, SA_FAILURE_COUNT, SA_MACHINE,
                         SA_MACHINE_STATUS, SA_MACHINE_PLACE)

# The type names the Temporal CLI and temporal-dev.yaml use.
_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
}
SEARCH_ATTRIBUTE_TYPES: Mapping[str, str] = {key.name: _TYPE_NAMES[key.indexed_value_type] for key in ALL_SEARCH_ATTRIBUTES}
