// A producer thread that dies before it has loaded the client, as one that runs out of
// memory or trips on a broken install would: its module throws as it is evaluated.
throw new Error('this thread dies while loading')
