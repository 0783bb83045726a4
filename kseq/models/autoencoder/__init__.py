"""The autoencoder family (`model.type: autoencoder`): dense and convolutional stacks, VAE."""
