from tests.chatbot.server.callbacks import callback  # noqa: F401 (fixture)
from tests.chatbot.server.model_servers import model_server, models, start_bot  # noqa: F401
from tests.chatbot.server.support import (  # noqa: F401 (fixtures)
    api,
    moodbot_model,
    restaurant_model,
    start_server,
    train_api,
)
from tests.connectors.test_chat_page import browser  # noqa: F401 (fixture)
from tests.services import postgres_url, redis_key_prefix, redis_url  # noqa: F401 (fixtures)
