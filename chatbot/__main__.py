from chatbot.cli import main

if __name__ == "__main__":  # not when a worker process of `chatbot run --workers` imports it
    main(prog_name="chatbot")
