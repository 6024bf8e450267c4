using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Memory;
using ZeroFL.Engine.Training;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Engine;

/// <summary>Training batches of an augmenting data set are cropped and flipped; evaluation batches are not.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class AugmentationTests(string device) : DeviceTest(device)
{
    [Test]
    public void TrainingBatchesAreCroppedAndFlippedWithSeededMovesAndEvaluationBatchesAreNot()
    {
        const int count = 6, channels = 3, size = 8, padding = 2;
        int sample = channels * size * size;
        var features = Numerics.Random(count * sample, seed: 11);
        var labels = Enumerable.Range(0, count).Select(i => i % 2).ToArray();
        float[] fill = [-1f, -2f, -3f];
        using var data = new DeviceDataset(Device, features, labels, [channels, size, size], 2);
        data.EnableCropFlip(padding, fill);
        using var workspace = new Workspace(Device);
        var tape = new Tape(workspace);
        int[] batch = [4, 1, 5];
        var gathered = GatherReference.GatherRows(features, sample, batch);

        var (input, _) = data.Batch(tape, batch, augmentationSeed: 7);
        var random = new Random(7);
        var moves = new int[3 * batch.Length];
        for (int i = 0; i < moves.Length; i += 3)
        {
            moves[i] = random.Next(-padding, padding + 1);
            moves[i + 1] = random.Next(-padding, padding + 1);
            moves[i + 2] = random.Next(2);
        }
        var expected = AugmentReference.RandomCropFlip(gathered, batch.Length, channels, size, size, padding, moves, fill);
        Assert.That(Download(input.Data), Is.EqualTo(expected), "training batch: the reference crop and flip of the seeded moves");
        Assert.That(Download(input.Data), Is.Not.EqualTo(gathered), "the moves changed the images");

        var (again, _) = data.Batch(tape, batch, augmentationSeed: 8);
        Assert.That(Download(again.Data), Is.Not.EqualTo(expected), "another seed, other moves");

        tape.Training = false;
        var (evaluation, _) = data.Batch(tape, batch, augmentationSeed: 7);
        Assert.That(Download(evaluation.Data), Is.EqualTo(gathered), "evaluation batches are the images as they are");
    }

    [Test]
    public void AugmentationNeedsOneFillValuePerChannel()
    {
        using var data = new DeviceDataset(Device, new float[2 * 3 * 4 * 4], [0, 1], [3, 4, 4], 2);
        Assert.Throws<ArgumentException>(() => data.EnableCropFlip(1, [0f]));
        Assert.Throws<ArgumentException>(() => data.EnableCropFlip(4, [0f, 0f, 0f]));
    }
}
