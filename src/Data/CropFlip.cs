namespace ZeroFL.Data;

/// <summary>
/// The training-time augmentation a data set calls for: a random crop of the original size from the
/// image padded by <see cref="Padding"/> pixels on every side, then a random horizontal flip
/// (torchvision's <c>RandomCrop(size, padding)</c> + <c>RandomHorizontalFlip()</c>, as used for
/// CIFAR-10). It runs on the device on every training batch; evaluation never augments.
/// </summary>
/// <param name="Padding">Pixels of padding on each side (4 for CIFAR-10).</param>
/// <param name="Fill">Per channel, the value the padding takes: the normalised value of a black pixel.</param>
public sealed record CropFlip(int Padding, float[] Fill);
